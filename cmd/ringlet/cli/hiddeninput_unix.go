//go:build linux || darwin

package cli

import (
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// readHidden turns the terminal's echo off, then shows the prompt, then
// reads one line: what is typed after the prompt appears is never echoed,
// however fast it comes (term.ReadPassword alone turns echo off only once
// it is called, after the prompt, so a quick typist or a script saw the
// start of the key echoed).
func readHidden(fd int, prompt func()) ([]byte, error) {
	old, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		prompt()
		return term.ReadPassword(fd)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &quiet); err != nil {
		prompt()
		return term.ReadPassword(fd)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, ioctlSetTermios, old) }() // best effort, as term.ReadPassword's own restore
	prompt()
	return term.ReadPassword(fd)
}
