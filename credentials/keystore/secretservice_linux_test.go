//go:build linux

package keystore

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/neullabs/ringlet/test/secretservice"
)

// The keyring tests share one private session bus and gnome-keyring,
// started by TestMain, so that they never touch the user's own keyring and
// run the same on a headless CI machine as on a desktop.

var (
	// harnessAddr is the private session bus when the harness runs.
	harnessAddr string
	// harnessMissing says which tool is not installed: the keyring tests
	// skip, or fail when CI=true.
	harnessMissing string
	// harnessErr is a harness that is installed but did not start: the
	// keyring tests fail.
	harnessErr error
)

// requireKeyring returns the private session bus address, or ends the test.
func requireKeyring(t *testing.T) string {
	t.Helper()
	if harnessErr != nil {
		t.Fatalf("private Secret Service: %v", harnessErr)
	}
	if harnessMissing != "" {
		secretservice.SkipOrFail(t, harnessMissing)
	}
	return harnessAddr
}

// requireTool returns the path of an executable, or ends the test.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return secretservice.RequireTool(t, name)
}

// lockLogin locks the private login collection and returns the function
// that unlocks it again, for t.Cleanup.
func lockLogin(t *testing.T, addr string) func() {
	t.Helper()
	return secretservice.Lock(t, addr)
}

// startKeyringHarness starts the private Secret Service and points
// DBUS_SESSION_BUS_ADDRESS (which go-keyring reads) at it. It returns the
// function that stops it.
func startKeyringHarness() func() {
	// Until the harness is up no test may reach the user's own keyring.
	os.Unsetenv("DBUS_SESSION_BUS_ADDRESS")
	s, err := secretservice.Launch()
	switch {
	case errors.Is(err, secretservice.ErrMissing):
		harnessMissing = secretservice.Missing()
		fmt.Fprintf(os.Stderr, "credentials: the keyring tests cannot run: %s\n", harnessMissing)
		return func() {}
	case err != nil:
		harnessErr = err
		fmt.Fprintf(os.Stderr, "credentials: private Secret Service: %v\n", err)
		return func() {}
	}
	harnessAddr = s.Addr
	os.Setenv("DBUS_SESSION_BUS_ADDRESS", s.Addr)
	return s.Stop
}
