package sandbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The seccomp filter every sandbox gets (bwrap --seccomp): a blocklist in
// line with Flatpak's (flatpak-run.c, setup_seccomp, without --allow=devel)
// and Codex's Linux sandbox, assembled by go-seccomp-bpf. What it refuses
// is kernel surface an agent has no use for and that has a record of
// privilege escalations and sandbox escapes; everything else is allowed,
// so ordinary programs (node, python, git, compilers) run as before.
//
// Two choices worth knowing:
//   - clone3 returns ENOSYS: its flags are in a struct that seccomp cannot
//     read, and glibc (2.34+) falls back to clone on ENOSYS, whose flags
//     are checked (no new namespaces).
//   - ptrace is refused, as Flatpak does by default and Codex does: every
//     process in the sandbox runs as the same user, and ptrace (or
//     process_vm_*, pidfd_getfd) would let the agent reach into the
//     forwarder or any other process there, and on kernels before 4.8
//     rewrite a system call after the filter has allowed it. The price:
//     strace, gdb and LeakSanitizer do not work inside.

var (
	// namespaceFlags are the clone flags that make new namespaces.
	// CLONE_NEWTIME is not among them: in clone's flags its bit is part
	// of the exit signal; only clone3 and unshare take it.
	namespaceFlags uint64 = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

	// blockedEPERM are refused outright with EPERM.
	blockedEPERM = []string{
		// Kernel log, accounting, quotas, old or 16-bit-only calls.
		"syslog", "uselib", "acct", "modify_ldt", "quotactl", "quotactl_fd", "lookup_dcookie",
		// The kernel keyring: shared beyond the sandbox, and a source of
		// leaks and bugs.
		"add_key", "keyctl", "request_key",
		// NUMA and page migration.
		"move_pages", "mbind", "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages",
		// New namespaces and mounts: the sandbox is built once, by bwrap.
		"unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
		// Other processes: see the package comment on ptrace.
		"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
		// Profiling, eBPF, userfaultfd: the usual kernel exploit helpers.
		"perf_event_open", "bpf", "userfaultfd",
		// io_uring: a second path to most system calls (socket included)
		// that this filter would not see.
		"io_uring_setup", "io_uring_enter", "io_uring_register",
		// The machine itself.
		"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"reboot", "swapon", "swapoff", "iopl", "ioperm", "open_by_handle_at",
	}

	// blockedENOSYS look absent, so that callers fall back: clone3 to
	// clone, and the new mount API, which nobody in a sandbox needs.
	blockedENOSYS = []string{"clone3", "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"}

	// archSpecific are calls only some architectures have (x86's).
	archSpecific = map[string]bool{"uselib": true, "modify_ldt": true, "iopl": true, "ioperm": true}

	// allowedPersonalities are Docker's: PER_LINUX (0), PER_LINUX32 (8),
	// UNAME26 (0x20000), both, and 0xffffffff, which only asks for the
	// current one. Refused: ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC and the
	// other emulations.
	allowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

	// allowedSocketFamilies are Flatpak's, less AF_CAN and AF_BLUETOOTH:
	// AF_VSOCK would reach the host (a VM's hypervisor, WSL) whatever the
	// network namespace, and the rest (AF_ALG, AF_PACKET, ...) are kernel
	// surface no agent needs.
	allowedSocketFamilies = []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

	// replaySocketFamilies are those of the sandbox 'hooks test' runs a
	// hook in (ReplayArgs): no AF_UNIX. Its network namespace cuts IP, but
	// a unix socket on the host's files is connect()ed whatever the mount
	// (a session's egress socket, X11, tmux, ssh-agent); socketpair, which
	// reaches nobody else, stays allowed.
	replaySocketFamilies = []uint64{unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

	// ttyInjection are the ioctls that type into a terminal (TIOCSTI) or
	// paste a console's selection into it (TIOCLINUX).
	ttyInjection = []uint32{unix.TIOCSTI, unix.TIOCLINUX}
)

// errnoAction refuses a call with errno.
func errnoAction(errno unix.Errno) seccomp.Action {
	return seccomp.ActionErrno | seccomp.Action(errno)
}

// seccompPolicy is the blocklist for the architecture info, with the
// socket families a sandbox may open.
func seccompPolicy(info *arch.Info, families []uint64) seccomp.Policy {
	present := func(names []string) []string {
		var out []string
		for _, n := range names {
			if _, ok := info.SyscallNames[n]; ok || !archSpecific[n] {
				out = append(out, n) // an unknown name is the library's error
			}
		}
		return out
	}
	// The kernel reads ioctl's request as 32 bits, so the filter must
	// ignore the upper half (CVE-2019-10063 in Flatpak): "equal" is
	// spelled as every bit of the request set and no other low bit.
	var ioctl []seccomp.NameWithConditions
	for _, req := range ttyInjection {
		conds := seccomp.ArgumentConditions{{Argument: 1, Operation: seccomp.BitsNotSet, Value: uint64(^req)}}
		for bit := uint32(1); bit != 0; bit <<= 1 {
			if req&bit != 0 {
				conds = append(conds, seccomp.Condition{Argument: 1, Operation: seccomp.BitsSet, Value: uint64(bit)})
			}
		}
		ioctl = append(ioctl, seccomp.NameWithConditions{Name: "ioctl", Conditions: conds})
	}
	// A value with the upper half set is refused too: stricter than the
	// kernel, never looser.
	notIn := func(argument uint32, values []uint64) seccomp.ArgumentConditions {
		var c seccomp.ArgumentConditions
		for _, v := range values {
			c = append(c, seccomp.Condition{Argument: argument, Operation: seccomp.NotEqual, Value: v})
		}
		return c
	}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: errnoAction(unix.EPERM), Names: present(blockedEPERM)},
			{Action: errnoAction(unix.ENOSYS), Names: present(blockedENOSYS)},
			{Action: errnoAction(unix.EPERM), NamesWithCondtions: append([]seccomp.NameWithConditions{
				{Name: "clone", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: namespaceFlags}}},
				{Name: "personality", Conditions: notIn(0, allowedPersonalities)},
			}, ioctl...)},
			{Action: errnoAction(unix.EAFNOSUPPORT), NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "socket", Conditions: notIn(0, families)},
			}},
		},
	}
}

// seccompProgram assembles the filter for the running architecture.
func seccompProgram(families []uint64) ([]bpf.Instruction, error) {
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		return nil, fmt.Errorf("no seccomp filter for %s: %w", runtime.GOARCH, err)
	}
	pol := seccompPolicy(info, families)
	prog, err := pol.Assemble()
	if err != nil {
		return nil, fmt.Errorf("assemble the seccomp filter: %w", err)
	}
	// The library sends calls of another architecture's ABI (i386's int
	// 0x80 on amd64, arm32's on arm64) to the default action, which for a
	// blocklist is "allow": they would pass unfiltered, under other
	// numbers. They are killed instead, before the library's program.
	guard := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: uint32(seccomp.ActionKillProcess)},
	}
	return append(guard, prog...), nil
}

var (
	seccompOnce       = sync.OnceValues(func() ([]byte, error) { return compileFilter(allowedSocketFamilies) })
	replaySeccompOnce = sync.OnceValues(func() ([]byte, error) { return compileFilter(replaySocketFamilies) })
)

// compileFilter is the filter, as struct sock_filter bytes.
func compileFilter(families []uint64) ([]byte, error) {
	prog, err := seccompProgram(families)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble the seccomp filter: %w", err)
	}
	// struct sock_filter, in the kernel's byte order, as bwrap reads it.
	var b bytes.Buffer
	for _, ins := range raw {
		// Writing to a bytes.Buffer does not fail.
		_ = binary.Write(&b, binary.NativeEndian, struct {
			Op     uint16
			Jt, Jf uint8
			K      uint32
		}{ins.Op, ins.Jt, ins.Jf, ins.K})
	}
	return b.Bytes(), nil
}

// SeccompFilter returns the compiled filter (an array of struct
// sock_filter) that bwrap --seccomp loads into every sandbox.
func SeccompFilter() ([]byte, error) {
	b, err := seccompOnce()
	return bytes.Clone(b), err
}

// ReplayFilter returns the filter of the sandbox 'hooks test' runs a hook
// in: SeccompFilter's, and no unix sockets either.
func ReplayFilter() ([]byte, error) {
	b, err := replaySeccompOnce()
	return bytes.Clone(b), err
}
