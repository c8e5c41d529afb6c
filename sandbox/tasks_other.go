//go:build !linux

package sandbox

import "errors"

const (
	rlimitData  = 2 // RLIMIT_DATA
	rlimitNproc = 7 // RLIMIT_NPROC (macOS)
)

// hardLimit is not needed where prlimit is not used.
var hardLimit = func(int) (uint64, bool) { return 0, false }

// UserTasks is Linux's; elsewhere Ringlet's own helper counts.
func UserTasks(int) (int, error) {
	return 0, errors.New("counting a user's tasks is implemented for Linux")
}
