package perprofile

import (
	"io/fs"
	"syscall"
	"time"
)

// stamp is what a stat of a file says that changes when the file does.
type stamp struct {
	dev, ino   uint64
	size       int64
	mode       fs.FileMode
	uid        uint32
	mtime      int64 // ns
	ctimeNanos int64 // ns; 0 where the platform's stat has none
}

func stampOf(fi fs.FileInfo) stamp {
	st := stamp{size: fi.Size(), mode: fi.Mode(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino, st.uid = uint64(sys.Dev), sys.Ino, sys.Uid
		st.ctimeNanos = ctime(sys)
	}
	return st
}

// changed is the later of the file's modification and change times.
func (s stamp) changed() time.Time {
	return time.Unix(0, max(s.mtime, s.ctimeNanos))
}
