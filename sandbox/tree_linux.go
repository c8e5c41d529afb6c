package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Tree is the whole process tree of one sandbox, as the daemon knows it
// from the kernel rather than from whoever launched it: the first process
// of the sandbox's own PID namespace (bwrap's init there), held by a
// pidfd. SIGKILL to that process makes the kernel kill every other process
// of the namespace, and the pidfd turns readable only once they are all
// gone, so Kill needs neither the launcher's help nor a walk of /proc.
type Tree struct {
	fd  int // pidfd of the namespace's init
	pid int // its pid in the daemon's namespace, for messages
	ns  uint64
}

// PeerTree finds the sandbox of the process at the other end of a Unix
// socket connection (the forwarder inside a sandbox, connecting to its
// session socket): the kernel names that process (SO_PEERPIDFD, or
// SO_PEERCRED on kernels before 6.5). It returns nil, nil when the peer is
// not in a PID namespace of its own (a process of the user's, outside any
// sandbox), so that nothing outside a sandbox is ever taken for one.
func PeerTree(c net.Conn) (*Tree, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	peer := -1
	var serr error
	cerr := raw.Control(func(fd uintptr) {
		peer, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		if serr == nil {
			return
		}
		var cred *unix.Ucred
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if serr == nil {
			peer, serr = unix.PidfdOpen(int(cred.Pid), 0)
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	if serr != nil {
		return nil, fmt.Errorf("the peer of the session socket: %w", serr)
	}
	defer func() { _ = unix.Close(peer) }() // a descriptor of ours, read-only use
	return treeOf(peer)
}

// treeOf finds the init of the PID namespace of the process of pidfd
// peer, going up its parents.
func treeOf(peer int) (*Tree, error) {
	own, err := nsInode("self")
	if err != nil {
		return nil, err
	}
	pid, err := pidfdPid(peer)
	if err != nil {
		return nil, err
	}
	ns, err := nsInode(strconv.Itoa(pid))
	if err != nil {
		return nil, err
	}
	// Still alive after its namespace was read: the pid was its.
	if err := unix.PidfdSendSignal(peer, 0, nil, 0); err != nil {
		return nil, fmt.Errorf("the peer of the session socket exited: %w", err)
	}
	if ns == own {
		return nil, nil
	}
	// Up the parents, within the namespace, to the one that is pid 1 in
	// it. bwrap's init is the forwarder's parent; a reparented process
	// has init as its parent too.
	for range 64 {
		inner, ppid, err := procStatus(pid)
		if err != nil {
			return nil, err
		}
		if inner == 1 {
			return openTree(pid, ns)
		}
		if ppid <= 0 {
			break
		}
		pns, err := nsInode(strconv.Itoa(ppid))
		if err != nil || pns != ns {
			break
		}
		pid = ppid
	}
	return nil, errors.New("the sandbox's PID namespace has no init in sight")
}

// openTree holds init (pid) of namespace ns by a pidfd, checked to be
// that process once held.
func openTree(pid int, ns uint64) (*Tree, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("hold the sandbox's init: %w", err)
	}
	got, err := nsInode(strconv.Itoa(pid))
	inner, _, serr := procStatus(pid)
	if err != nil || serr != nil || got != ns || inner != 1 || unix.PidfdSendSignal(fd, 0, nil, 0) != nil {
		_ = unix.Close(fd) // never used
		return nil, errors.New("the sandbox's init exited while it was found")
	}
	return &Tree{fd: fd, pid: pid, ns: ns}, nil
}

// Pid is the tree's init, as the daemon's namespace numbers it.
func (t *Tree) Pid() int { return t.pid }

// Namespace is the inode of the tree's PID namespace
// (/proc/PID/ns/pid), which every process of the tree shares.
func (t *Tree) Namespace() uint64 { return t.ns }

// Kill sends SIGKILL to the tree's init, which takes every process of its
// namespace with it, and waits until they are all gone or ctx ends. A tree
// that is gone already is no error.
func (t *Tree) Kill(ctx context.Context) error {
	if err := unix.PidfdSendSignal(t.fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill the sandbox (pid %d): %w", t.pid, err)
	}
	for {
		wait := 100 * time.Millisecond
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		fds := []unix.PollFd{{Fd: int32(t.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(wait, 0)/time.Millisecond))
		if n > 0 {
			return nil
		}
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("wait for the sandbox (pid %d): %w", t.pid, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the sandbox (pid %d) was still there after SIGKILL: %w", t.pid, ctx.Err())
		}
	}
}

// Close lets go of the pidfd.
func (t *Tree) Close() {
	if t != nil && t.fd >= 0 {
		_ = unix.Close(t.fd) // a pidfd: nothing to flush
		t.fd = -1
	}
}

// nsInode is the inode of /proc/PID/ns/pid.
func nsInode(pid string) (uint64, error) {
	fi, err := os.Stat("/proc/" + pid + "/ns/pid")
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, errors.New("no inode for a PID namespace")
	}
	return st.Ino, nil
}

// pidfdPid is the pid a pidfd refers to, from /proc/self/fdinfo.
func pidfdPid(fd int) (int, error) {
	data, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("Pid:")); ok {
			pid, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || pid <= 0 {
				return 0, errors.New("the process exited")
			}
			return pid, nil
		}
	}
	return 0, errors.New("this kernel's pidfd shows no pid")
}

// procStatus reads a process's pid in its own namespace (the last field
// of NSpid) and its parent's pid.
func procStatus(pid int) (inner, ppid int, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := bytes.Cut(sc.Bytes(), []byte(":"))
		f := bytes.Fields(v)
		switch {
		case string(k) == "NSpid" && len(f) > 0:
			inner, _ = strconv.Atoi(string(f[len(f)-1]))
		case string(k) == "PPid" && len(f) > 0:
			ppid, _ = strconv.Atoi(string(f[0]))
		}
	}
	if inner == 0 {
		return 0, 0, errors.New("no NSpid in /proc/" + strconv.Itoa(pid) + "/status")
	}
	return inner, ppid, sc.Err()
}
