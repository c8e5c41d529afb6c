package cli

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// syscallProbe is one system call that the sandbox's seccomp filter
// refuses, made with arguments that make it fail at once, changing
// nothing, when the filter lets it through: a bad descriptor, pointer or
// flag, or an impossible flag combination. So the errno tells the filter
// (want) from the kernel (anything else).
type syscallProbe struct {
	name string
	want syscall.Errno // 0: a control that must succeed
	call func() syscall.Errno
}

func sys(nr uintptr, args ...uintptr) func() syscall.Errno {
	return func() syscall.Errno {
		var a [6]uintptr
		copy(a[:], args)
		_, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		return e
	}
}

// badPtr is an address nothing is mapped at: a call that reads it fails
// with EFAULT.
const badPtr = 1

// noSuchPid is above the kernel's pid limit.
const noSuchPid = 1 << 30

func syscallProbes() []syscallProbe {
	bad := ^uintptr(0) // fd -1
	// CLONE_THREAD without CLONE_SIGHAND is refused (EINVAL) before a
	// process is made; the filter answers first, on the namespace flag.
	clone := func(ns uintptr) func() syscall.Errno {
		return sys(unix.SYS_CLONE, ns|unix.CLONE_THREAD)
	}
	return []syscallProbe{
		{"getpid (control)", 0, sys(unix.SYS_GETPID)},
		{"personality query (control)", 0, sys(unix.SYS_PERSONALITY, 0xffffffff)},
		{"clone3", unix.ENOSYS, sys(unix.SYS_CLONE3, 0, 0)},
		{"clone CLONE_NEWUSER", unix.EPERM, clone(unix.CLONE_NEWUSER)},
		{"clone CLONE_NEWNS", unix.EPERM, clone(unix.CLONE_NEWNS)},
		{"clone CLONE_NEWNET", unix.EPERM, clone(unix.CLONE_NEWNET)},
		{"clone CLONE_NEWPID", unix.EPERM, clone(unix.CLONE_NEWPID)},
		{"unshare", unix.EPERM, sys(unix.SYS_UNSHARE, unix.CLONE_PARENT)},
		{"setns", unix.EPERM, sys(unix.SYS_SETNS, bad, 0)},
		{"mount", unix.EPERM, sys(unix.SYS_MOUNT, 0, 0, badPtr, 0, 0)},
		{"umount2", unix.EPERM, sys(unix.SYS_UMOUNT2, badPtr, 0xffff)},
		{"chroot", unix.EPERM, sys(unix.SYS_CHROOT, badPtr)},
		{"open_tree", unix.ENOSYS, sys(unix.SYS_OPEN_TREE, bad, badPtr, 0)},
		{"fsopen", unix.ENOSYS, sys(unix.SYS_FSOPEN, badPtr, 0)},
		{"ioctl TIOCSTI", unix.EPERM, sys(unix.SYS_IOCTL, bad, unix.TIOCSTI, 0)},
		{"ioctl TIOCSTI, upper bits set", unix.EPERM, sys(unix.SYS_IOCTL, bad, 1<<32|unix.TIOCSTI, 0)},
		{"ioctl TIOCLINUX", unix.EPERM, sys(unix.SYS_IOCTL, bad, unix.TIOCLINUX, 0)},
		{"personality ADDR_NO_RANDOMIZE", unix.EPERM, sys(unix.SYS_PERSONALITY, 0x0040000)},
		{"keyctl", unix.EPERM, sys(unix.SYS_KEYCTL, 0x7fff, 0, 0, 0, 0)},
		{"add_key", unix.EPERM, sys(unix.SYS_ADD_KEY, badPtr, badPtr, 0, 0, 0)},
		{"request_key", unix.EPERM, sys(unix.SYS_REQUEST_KEY, badPtr, badPtr, 0, 0)},
		// UFFD_USER_MODE_ONLY passes the sysctl check; O_RDWR is not a
		// valid flag.
		{"userfaultfd", unix.EPERM, sys(unix.SYS_USERFAULTFD, 1|unix.O_RDWR)},
		{"perf_event_open", unix.EPERM, sys(unix.SYS_PERF_EVENT_OPEN, badPtr, 0, bad, bad, 0)},
		{"bpf", unix.EPERM, sys(unix.SYS_BPF, 0xffff, badPtr, 0)},
		{"io_uring_setup", unix.EPERM, sys(unix.SYS_IO_URING_SETUP, 0, badPtr)},
		{"io_uring_enter", unix.EPERM, sys(unix.SYS_IO_URING_ENTER, bad, 0, 0, 0, 0, 0)},
		{"io_uring_register", unix.EPERM, sys(unix.SYS_IO_URING_REGISTER, bad, 0xffff, 0, 0)},
		{"ptrace", unix.EPERM, sys(unix.SYS_PTRACE, unix.PTRACE_ATTACH, noSuchPid, 0, 0)},
		{"process_vm_readv", unix.EPERM, sys(unix.SYS_PROCESS_VM_READV, noSuchPid, 0, 0, 0, 0, 1)},
		{"pidfd_getfd", unix.EPERM, sys(unix.SYS_PIDFD_GETFD, bad, bad, 0)},
		{"kexec_load", unix.EPERM, sys(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xffff)},
		{"finit_module", unix.EPERM, sys(unix.SYS_FINIT_MODULE, bad, badPtr, 0)},
		{"socket AF_VSOCK", unix.EAFNOSUPPORT, sys(unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM, 0)},
		// Without the filter: EPERM (no CAP_NET_RAW), not EAFNOSUPPORT.
		{"socket AF_PACKET", unix.EAFNOSUPPORT, sys(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_RAW, 0)},
	}
}

// probeResult is what one syscallProbe found.
type probeResult struct {
	Call   string `json:"call"`
	Passed bool   `json:"passed"`
	Got    string `json:"got"`
	Want   string `json:"want"`
}

// runSyscallProbes makes each call and compares its errno with the
// filter's answer.
func runSyscallProbes() ([]probeResult, error) {
	var out []probeResult
	for _, p := range syscallProbes() {
		e := p.call()
		out = append(out, probeResult{Call: p.name, Got: errnoName(e), Want: errnoName(p.want), Passed: e == p.want})
	}
	return out, nil
}

func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "success"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return e.Error()
}
