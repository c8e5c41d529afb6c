package keystore

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/neullabs/ringlet/credentials"
)

// KeyringService is the service name of every item Ringlet stores in the
// OS credential store; the account is "<provider>/<alias>". On Linux the
// item carries the attributes service=ringlet and username=<provider>/<alias>
// (`secret-tool search service ringlet`); on macOS it is a generic password
// with service "ringlet" and account "<provider>/<alias>".
const KeyringService = "ringlet"

// keyringTimeout bounds every call: a locked keyring may wait forever for a
// password prompt that no one can see on a headless machine.
const keyringTimeout = 15 * time.Second

// keyringBackend stores keys through go-keyring.
type keyringBackend struct {
	// items caches the account of each item path seen by a listing (nil:
	// no cache), so that a listing reads the attributes of new items only.
	items *itemAccounts
}

// itemAccounts maps the Secret Service's item paths to their username
// attribute. A path names one item for the life of the service process
// (gnome-keyring numbers new items upwards and does not reuse a deleted
// one's number while it runs), and Ringlet replaces an item's secret in
// place, never its attributes; so the cache holds for one owner of the
// service's bus name and is dropped when another process owns it (a
// restarted keyring numbers its items afresh). An item whose attributes
// someone else rewrites in place is not noticed until that restart.
type itemAccounts struct {
	mu    sync.Mutex
	owner string            // the unique bus name the paths belong to
	m     map[string]string // D-Bus object path -> username attribute
}

func (keyringBackend) Name() string { return credentials.BackendKeyring }

func (keyringBackend) Get(r credentials.Ref) (credentials.Secret, error) {
	v, err := withTimeout(func() (string, error) { return keyring.Get(KeyringService, r.String()) })
	if err != nil {
		return credentials.Secret{}, keyringErr("read", r, err)
	}
	return credentials.NewSecret(v), nil
}

func (keyringBackend) Set(r credentials.Ref, s credentials.Secret) error {
	_, err := withTimeout(func() (string, error) { return "", keyring.Set(KeyringService, r.String(), s.Reveal()) })
	return keyringErr("store", r, err)
}

func (keyringBackend) Delete(r credentials.Ref) error {
	_, err := withTimeout(func() (string, error) { return "", keyring.Delete(KeyringService, r.String()) })
	return keyringErr("delete", r, err)
}

var errKeyringTimeout = errors.New("the OS keyring did not answer within 15s (it may be locked and waiting for a password prompt); unlock it, or use 'ringlet config set credentials.backend file'")

// withTimeout runs f, giving up after keyringTimeout. go-keyring has no
// context, so a call that hangs is abandoned, not cancelled.
func withTimeout(f func() (string, error)) (string, error) {
	type result struct {
		v   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(keyringTimeout):
		return "", errKeyringTimeout
	}
}

func keyringErr(op string, r credentials.Ref, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return fmt.Errorf("%s %s: %w", op, r, credentials.ErrNotFound)
	case errors.Is(err, errKeyringTimeout):
		return err
	default:
		// go-keyring's errors name D-Bus methods and paths, never the
		// secret; keep them, they say what failed.
		return fmt.Errorf("%s %s in the OS keyring: %v", op, r, err)
	}
}
