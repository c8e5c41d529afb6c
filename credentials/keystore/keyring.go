package keystore

import (
	"errors"
	"fmt"
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
type keyringBackend struct{}

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
