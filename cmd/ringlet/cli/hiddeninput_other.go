//go:build !linux && !darwin

package cli

import "golang.org/x/term"

// readHidden shows the prompt and reads one line without echo.
func readHidden(fd int, prompt func()) ([]byte, error) {
	prompt()
	return term.ReadPassword(fd)
}
