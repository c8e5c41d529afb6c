package privatefile

import (
	"io/fs"
	"syscall"
	"time"
)

// Stamp tells one content of a file from another without reading it: any
// write, replacement (rename gives a new inode), chmod or chown changes it.
// Callers that cache what they parsed from a private file key the cache
// with the Stamp taken before the read, so a change between the stamp and
// the read costs one more parse, never a stale answer; and since mode and
// owner are part of it, a file that fails Read's checks is read again and
// refused.
type Stamp struct {
	dev, ino, size, uid uint64
	mode                fs.FileMode
	mtime, ctime        int64 // ns
}

// StampOf returns path's Stamp (not following a symbolic link); ok is
// false when there is none to take.
// It allocates nothing for a path under 512 bytes: the profiles' check
// takes one on every proxied request.
func StampOf(path string) (_ Stamp, ok bool) {
	var st syscall.Stat_t
	if err := Lstat(path, &st); err != nil {
		return Stamp{}, false
	}
	return stampOfStat(&st), true
}

// StampOfInfo returns the Stamp of what an Lstat returned; ok is false
// where the platform's stat has no inode and owner to go by.
func StampOfInfo(fi fs.FileInfo) (_ Stamp, ok bool) {
	st, isUnix := fi.Sys().(*syscall.Stat_t)
	if !isUnix {
		return Stamp{}, false
	}
	return stampOfStat(st), true
}

// stampOfStat is the Stamp of a stat: its mode as os reports it
// (TestStampOfMatchesLstat holds the two equal).
func stampOfStat(st *syscall.Stat_t) Stamp {
	return Stamp{dev: uint64(st.Dev), ino: st.Ino, size: uint64(st.Size), uid: uint64(st.Uid), mode: fileMode(uint32(st.Mode)),
		mtime: mtimeNs(st), ctime: ctimeNs(st)}
}

// Changed is the later of the file's modification and change times.
func (s Stamp) Changed() time.Time { return time.Unix(0, max(s.mtime, s.ctime)) }

// RacyWindow: a file changed this recently may change again without its
// times changing (file times tick coarsely: jiffies on Linux, whole
// seconds on some file systems), so what was read of it is not kept
// against its Stamp until it is older. As with git's racily clean index
// entries, the cost is a read per use in the window after a change.
const RacyWindow = 2 * time.Second

// SettledAt reports whether what was read of the file from the time at
// on may be kept against s: the file last changed more than RacyWindow
// before.
func (s Stamp) SettledAt(at time.Time) bool { return at.Sub(s.Changed()) > RacyWindow }
