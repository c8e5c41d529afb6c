package keystore

import (
	"fmt"
	"slices"
	"time"

	"github.com/godbus/dbus/v5"
)

const secretsName = "org.freedesktop.secrets"

// probeKeyring finds out whether a Secret Service is reachable on the
// session bus at addr and whether its login collection is unlocked.
// absent means there is none (auto falls back to the file); a non-nil err
// means one exists but cannot be used (auto must not fall back).
func probeKeyring(addr string) (absent string, err error) {
	type result struct {
		absent string
		err    error
	}
	ch := make(chan result, 1)
	// godbus has no deadline for the handshake or property reads: a bus
	// socket that accepts but never answers would hang the daemon's start.
	go func() {
		a, err := probeBus(addr)
		ch <- result{a, err}
	}()
	select {
	case r := <-ch:
		return r.absent, r.err
	case <-time.After(probeTimeout):
		return "", fmt.Errorf("the D-Bus session bus did not answer within %s; fix or unset DBUS_SESSION_BUS_ADDRESS, or set credentials.backend to file", probeTimeout)
	}
}

// probeTimeout bounds the whole Secret Service probe.
const probeTimeout = 5 * time.Second

func probeBus(addr string) (absent string, err error) {
	if addr == "" {
		return "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and $XDG_RUNTIME_DIR/bus does not exist)", nil
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		return fmt.Sprintf("the D-Bus session bus is not reachable (%v)", err), nil
	}
	defer func() { _ = conn.Close() }()
	bus := conn.BusObject()
	var owned bool
	if err := bus.Call("org.freedesktop.DBus.NameHasOwner", 0, secretsName).Store(&owned); err != nil {
		return "", fmt.Errorf("ask the session bus for a Secret Service: %v", err)
	}
	if !owned {
		var activatable []string
		if err := bus.Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&activatable); err != nil || !slices.Contains(activatable, secretsName) {
			return "no Secret Service (GNOME Keyring, KWallet) on the session bus", nil
		}
	}
	// go-keyring uses the "login" collection, or the default alias when
	// there is no login collection.
	for _, path := range []dbus.ObjectPath{"/org/freedesktop/secrets/collection/login", "/org/freedesktop/secrets/aliases/default"} {
		v, perr := conn.Object(secretsName, path).GetProperty("org.freedesktop.Secret.Collection.Locked")
		if perr != nil {
			continue
		}
		if locked, _ := v.Value().(bool); locked {
			return "", fmt.Errorf("the Secret Service's login keyring is locked; unlock it (log in to the desktop session, or run 'gnome-keyring-daemon --unlock') or set credentials.backend to file")
		}
		return "", nil
	}
	return "", fmt.Errorf("the Secret Service has no login or default keyring collection; create one (e.g. with Seahorse) or set credentials.backend to file")
}
