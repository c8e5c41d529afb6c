package sandbox

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestSeccompNames: every blocked call exists on both architectures
// Ringlet supports, except the x86-only ones, so the filter assembles on
// arm64 as it does on amd64.
func TestSeccompNames(t *testing.T) {
	t.Parallel()
	for _, a := range []string{"amd64", "arm64"} {
		info, err := arch.GetInfo(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range append(append(append([]string{}, blockedEPERM...), blockedENOSYS...), "clone", "ioctl", "personality", "socket") {
			if _, ok := info.SyscallNames[n]; !ok && !(archSpecific[n] && a != "amd64") {
				t.Errorf("%s: got no system call %q, want every blocked call known (or marked x86-only)", a, n)
			}
		}
		pol := seccompPolicy(info, allowedSocketFamilies)
		for _, g := range pol.Syscalls {
			for _, n := range g.Names {
				if _, ok := info.SyscallNames[n]; !ok {
					t.Errorf("%s: the policy names %q, which this architecture does not have", a, n)
				}
			}
		}
	}
}

// seccompData is struct seccomp_data as the BPF VM reads it: the VM loads
// 32-bit words big-endian where the kernel loads them in its own order,
// so each word is written big-endian at the offset the kernel uses (the
// low half of an argument first, on a little-endian machine).
func seccompData(nr int, auditArch uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], uint32(nr))
	binary.BigEndian.PutUint32(b[4:], auditArch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[16+8*i+4:], uint32(a>>32))
	}
	return b
}

func TestSeccompFilter(t *testing.T) {
	t.Parallel()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the VM encoding here assumes a little-endian machine")
	}
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		t.Skipf("no seccomp filter for %s", runtime.GOARCH)
	}
	prog, err := seccompProgram(allowedSocketFamilies)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	const (
		allow   = uint32(seccomp.ActionAllow)
		kill    = uint32(seccomp.ActionKillProcess)
		eperm   = uint32(seccomp.ActionErrno) | uint32(unix.EPERM)
		enosys  = uint32(seccomp.ActionErrno) | uint32(unix.ENOSYS)
		noFamly = uint32(seccomp.ActionErrno) | uint32(unix.EAFNOSUPPORT)
	)
	nr := func(name string) int {
		n, ok := info.SyscallNames[name]
		if !ok {
			t.Fatalf("no system call %s here", name)
		}
		return n
	}
	native := uint32(info.ID)
	threadFlags := uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD |
		unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID)
	cases := []struct {
		name string
		data []byte
		want uint32
	}{
		{"read", seccompData(nr("read"), native, 0, 0, 0), allow},
		{"execve", seccompData(nr("execve"), native), allow},
		{"clone of a thread", seccompData(nr("clone"), native, threadFlags), allow},
		{"fork through clone", seccompData(nr("clone"), native, uint64(unix.SIGCHLD)), allow},
		{"clone with CLONE_NEWUSER", seccompData(nr("clone"), native, unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), eperm},
		{"clone with CLONE_NEWNET", seccompData(nr("clone"), native, unix.CLONE_NEWNET), eperm},
		{"clone with CLONE_NEWNS", seccompData(nr("clone"), native, unix.CLONE_NEWNS), eperm},
		{"clone with CLONE_NEWPID", seccompData(nr("clone"), native, unix.CLONE_NEWPID), eperm},
		{"clone3", seccompData(nr("clone3"), native), enosys},
		{"unshare", seccompData(nr("unshare"), native, unix.CLONE_NEWUSER), eperm},
		{"unshare(0)", seccompData(nr("unshare"), native, 0), eperm},
		{"setns", seccompData(nr("setns"), native), eperm},
		{"mount", seccompData(nr("mount"), native), eperm},
		{"fsopen", seccompData(nr("fsopen"), native), enosys},
		{"keyctl", seccompData(nr("keyctl"), native), eperm},
		{"add_key", seccompData(nr("add_key"), native), eperm},
		{"request_key", seccompData(nr("request_key"), native), eperm},
		{"io_uring_setup", seccompData(nr("io_uring_setup"), native), eperm},
		{"io_uring_enter", seccompData(nr("io_uring_enter"), native), eperm},
		{"perf_event_open", seccompData(nr("perf_event_open"), native), eperm},
		{"bpf", seccompData(nr("bpf"), native), eperm},
		{"ptrace", seccompData(nr("ptrace"), native), eperm},
		{"process_vm_writev", seccompData(nr("process_vm_writev"), native), eperm},
		{"userfaultfd", seccompData(nr("userfaultfd"), native), eperm},
		{"kexec_load", seccompData(nr("kexec_load"), native), eperm},
		{"finit_module", seccompData(nr("finit_module"), native), eperm},
		{"ioctl TCGETS", seccompData(nr("ioctl"), native, 0, unix.TCGETS), allow},
		{"ioctl TIOCGWINSZ", seccompData(nr("ioctl"), native, 0, unix.TIOCGWINSZ), allow},
		{"ioctl TIOCSTI", seccompData(nr("ioctl"), native, 0, unix.TIOCSTI), eperm},
		{"ioctl TIOCLINUX", seccompData(nr("ioctl"), native, 0, unix.TIOCLINUX), eperm},
		// The kernel ignores the upper half; so must the filter.
		{"ioctl TIOCSTI, upper bits set", seccompData(nr("ioctl"), native, 0, 1<<32|unix.TIOCSTI), eperm},
		{"ioctl TIOCSTI with another low bit", seccompData(nr("ioctl"), native, 0, unix.TIOCSTI|1<<20), allow},
		{"personality query", seccompData(nr("personality"), native, 0xffffffff), allow},
		{"personality PER_LINUX", seccompData(nr("personality"), native, 0), allow},
		{"personality ADDR_NO_RANDOMIZE", seccompData(nr("personality"), native, 0x0040000), eperm}, // ADDR_NO_RANDOMIZE,
		{"personality PER_LINUX, upper bits set", seccompData(nr("personality"), native, 1<<32), eperm},
		{"socket AF_UNIX", seccompData(nr("socket"), native, unix.AF_UNIX), allow},
		{"socket AF_INET6", seccompData(nr("socket"), native, unix.AF_INET6), allow},
		{"socket AF_NETLINK", seccompData(nr("socket"), native, unix.AF_NETLINK), allow},
		{"socket AF_VSOCK", seccompData(nr("socket"), native, unix.AF_VSOCK), noFamly},
		{"socket AF_PACKET", seccompData(nr("socket"), native, unix.AF_PACKET), noFamly},
		{"socket AF_ALG", seccompData(nr("socket"), native, unix.AF_ALG), noFamly},
		// Another ABI's call (int 0x80 on amd64): its numbers mean other
		// calls, so the blocklist cannot apply; it is killed.
		{"foreign architecture", seccompData(nr("read"), uint32(arch.I386.ID)), kill},
		{"foreign architecture, arm", seccompData(0, uint32(arch.ARM.ID)), kill},
	}
	if runtime.GOARCH == "amd64" {
		cases = append(cases, struct {
			name string
			data []byte
			want uint32
		}{"x32 ABI", seccompData(0x40000000|nr("read"), native), enosys})
	}
	for _, c := range cases {
		got, err := vm.Run(c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("%s: got action %#x, want %#x", c.name, uint32(got), c.want)
		}
	}
}

// TestSeccompFilterBytes: what bwrap reads is whole struct sock_filter
// entries, within the kernel's limit, and the same on every call.
func TestSeccompFilterBytes(t *testing.T) {
	t.Parallel()
	a, err := SeccompFilter()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SeccompFilter()
	if len(a) == 0 || len(a)%8 != 0 || len(a)/8 > 4096 {
		t.Fatalf("got %d bytes, want a non-empty multiple of 8 of at most 4096 instructions", len(a))
	}
	a[0] ^= 0xff
	if a[0] == b[0] {
		t.Error("SeccompFilter returned shared bytes; a caller could change the filter of later sandboxes")
	}
}

// TestReplayFilter: the sandbox 'hooks test' runs a hook in refuses unix
// sockets (which reach the host's sockets whatever the mounts) and keeps
// the rest of the agent's filter; socketpair, which reaches nobody, works.
func TestReplayFilter(t *testing.T) {
	t.Parallel()
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		t.Skipf("no seccomp filter for %s", runtime.GOARCH)
	}
	prog, err := seccompProgram(replaySocketFamilies)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	noFamily := uint32(seccomp.ActionErrno) | uint32(unix.EAFNOSUPPORT)
	native := uint32(info.ID)
	for _, c := range []struct {
		name string
		nr   string
		args []uint64
		want uint32
	}{
		{"socket AF_UNIX", "socket", []uint64{unix.AF_UNIX, unix.SOCK_STREAM}, noFamily},
		{"socket AF_UNIX, upper bits set", "socket", []uint64{1<<32 | unix.AF_UNIX}, noFamily},
		{"socket AF_INET", "socket", []uint64{unix.AF_INET}, uint32(seccomp.ActionAllow)},
		{"socket AF_VSOCK", "socket", []uint64{unix.AF_VSOCK}, noFamily},
		{"socketpair AF_UNIX", "socketpair", []uint64{unix.AF_UNIX}, uint32(seccomp.ActionAllow)},
		{"mount", "mount", nil, uint32(seccomp.ActionErrno) | uint32(unix.EPERM)},
	} {
		got, err := vm.Run(seccompData(info.SyscallNames[c.nr], native, c.args...))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("%s: got action %#x, want %#x", c.name, uint32(got), c.want)
		}
	}
	a, _ := ReplayFilter()
	b, _ := SeccompFilter()
	if len(a) == 0 || bytes.Equal(a, b) {
		t.Error("ReplayFilter is empty or the agent's filter; want one that refuses AF_UNIX")
	}
}
