//go:build !linux

package secretservice

import (
	"errors"
	"os"
	"testing"
)

// InstallHint says how to install the tools the harness needs on Linux.
const InstallHint = "apt-get install gnome-keyring dbus-daemon libsecret-tools"

// ErrMissing is wrapped by Launch's error: the Secret Service harness runs
// on Linux only; other systems keep keys in their own credential store.
var ErrMissing = errors.New("not available")

const notLinux = "the private Secret Service harness runs on Linux only"

// Service is a running private session bus and gnome-keyring (Linux only).
type Service struct {
	// Addr is the bus address, the value for DBUS_SESSION_BUS_ADDRESS.
	Addr string
}

// Missing says why the harness cannot run here.
func Missing() string { return notLinux }

// Start skips t: there is no Secret Service to start here.
func Start(t testing.TB) (busAddr string) {
	t.Helper()
	t.Skip(notLinux)
	return ""
}

// SkipOrFail skips t with why, or fails it when CI=true.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so the keyring tests must run)", why)
	}
	t.Skip(why)
}

// RequireTool skips t: the tools it looks for belong to the Linux harness.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	t.Skip(notLinux)
	return ""
}

// Launch fails: there is no Secret Service to start here.
func Launch() (*Service, error) { return nil, errors.Join(ErrMissing, errors.New(notLinux)) }

// Stop does nothing.
func (s *Service) Stop() {}
