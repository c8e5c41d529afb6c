//go:build linux && (amd64 || arm64)

package privatefile

import (
	"strings"
	"syscall"
	"unsafe"
)

// fastStat: stat allocates nothing for a short path.
const fastStat = true

const (
	atFDCWD           = -0x64 // AT_FDCWD
	atSymlinkNofollow = 0x100 // AT_SYMLINK_NOFOLLOW
)

func stat(path string, st *syscall.Stat_t, nofollow bool) error {
	var buf [512]byte
	if len(path) >= len(buf) || strings.IndexByte(path, 0) >= 0 {
		return statSlow(path, st, nofollow)
	}
	copy(buf[:], path)
	buf[len(path)] = 0
	dirfd, flags := atFDCWD, 0
	if nofollow {
		flags = atSymlinkNofollow
	}
	_, _, e := syscall.Syscall6(sysFstatat, uintptr(dirfd), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0) //nolint:gosec // G103: syscall.fstatat's call, with a stack buffer for its C string
	if e != 0 {
		return e
	}
	return nil
}
