package child

import (
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// Attr puts a child in a process group of its own (so it and whatever it
// spawns can be killed together) and has the kernel kill it if the daemon
// dies first.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// Contained is Attr, and also makes the child the first process of a PID
// namespace of its own when this kernel lets the daemon create one
// (ok reports whether it does). When the first process of a PID namespace
// dies, the kernel kills every other process in it: so nothing the child
// starts, however it detaches (a new session, a double fork, closed
// descriptors), outlives it, and the parent-death signal takes the whole
// tree with the daemon. An unprivileged daemon needs a user namespace for
// that, which maps only its own user and group; a root daemon does not.
//
// Inside, $$ and $PPID are numbers in the new namespace, while /proc is
// still the host's.
func Contained() (attr *syscall.SysProcAttr, ok bool) {
	attr = Attr()
	if !containable() {
		return attr, false
	}
	addNamespace(attr)
	return attr, true
}

func addNamespace(attr *syscall.SysProcAttr) {
	attr.Cloneflags = syscall.CLONE_NEWPID
	if uid := os.Getuid(); uid != 0 {
		gid := os.Getgid()
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
}

var (
	probeOnce sync.Once
	probeOK   bool
)

// containable tries once whether a child can get a PID namespace here:
// user namespaces may be off (a sysctl, Ubuntu's AppArmor restriction),
// and then children run as Attr alone.
func containable() bool {
	probeOnce.Do(func() {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = Attr()
		addNamespace(cmd.SysProcAttr)
		probeOK = cmd.Run() == nil
	})
	return probeOK
}
