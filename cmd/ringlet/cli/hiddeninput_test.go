//go:build linux || darwin

package cli

import (
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// TestReadHiddenEchoOffBeforePrompt: by the time the prompt is shown the
// terminal no longer echoes, so a key typed the instant the prompt
// appears is never on the screen; afterwards echo is back.
func TestReadHiddenEchoOffBeforePrompt(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	fd := int(tty.Fd())
	echoOn := func() bool {
		tio, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			t.Fatal(err)
		}
		return tio.Lflag&unix.ECHO != 0
	}
	if !echoOn() {
		t.Fatal("a new pseudo-terminal does not echo; the test cannot tell")
	}
	var echoAtPrompt bool
	if _, err := ptmx.Write([]byte("sk-typed-ahead\n")); err != nil {
		t.Fatal(err)
	}
	got, err := readHidden(fd, func() { echoAtPrompt = echoOn() })
	if err != nil {
		t.Fatal(err)
	}
	if echoAtPrompt {
		t.Error("echo was still on when the prompt was shown")
	}
	if string(got) != "sk-typed-ahead" {
		t.Errorf("read %q, want the typed line", got)
	}
	if !echoOn() {
		t.Error("echo is still off after the key was read")
	}
}
