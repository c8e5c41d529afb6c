package privatefile

import (
	"io/fs"
	"syscall"
)

// Stat and Lstat are syscall.Stat and syscall.Lstat without the
// allocation of the path as a C string where the platform allows it (a
// path short enough is made NUL-terminated on the stack): the audit log's
// tamper checks and the profiles' change checks stat a file on every
// proxied request.
func Stat(path string, st *syscall.Stat_t) error { return stat(path, st, false) }

// Lstat is Stat of the link itself.
func Lstat(path string, st *syscall.Stat_t) error { return stat(path, st, true) }

// statSlow is the allocating stat, for the paths stat cannot take.
func statSlow(path string, st *syscall.Stat_t, nofollow bool) error {
	if nofollow {
		return syscall.Lstat(path, st)
	}
	return syscall.Stat(path, st)
}

// fileMode is the fs.FileMode os.Lstat reports for a stat's mode.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFBLK:
		mode |= fs.ModeDevice
	case syscall.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		mode |= fs.ModeDir
	case syscall.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		mode |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
