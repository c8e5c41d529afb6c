//go:build !(linux && (amd64 || arm64))

package privatefile

import "syscall"

func stat(path string, st *syscall.Stat_t, nofollow bool) error {
	return statSlow(path, st, nofollow)
}

// fastStat: stat allocates nothing for a short path.
const fastStat = false
