package keystore

import (
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"
	ss "github.com/zalando/go-keyring/secret_service"

	"github.com/neullabs/ringlet/credentials"
)

// present reports which of refs the Secret Service holds, from one search
// of Ringlet's items and their attributes read in one pipelined batch,
// instead of go-keyring's six round trips per key. It looks where
// go-keyring stores and reads: the login collection (or the default alias)
// on the session bus of DBUS_SESSION_BUS_ADDRESS.
func (k keyringBackend) present(refs []credentials.Ref) (map[credentials.Ref]bool, error) {
	type result struct {
		held map[string]bool
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		held, err := keyringAccounts(k.items)
		ch <- result{held, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(keyringTimeout):
		return nil, errKeyringTimeout
	}
	if r.err != nil {
		return nil, fmt.Errorf("list Ringlet's items in the OS keyring: %v", r.err)
	}
	out := make(map[credentials.Ref]bool, len(refs))
	for _, ref := range refs {
		out[ref] = r.held[ref.String()]
	}
	return out, nil
}

// keyringAccounts returns the username attribute of every item whose
// service attribute is KeyringService, reading the attributes of the items
// that cache (if any) has not seen.
func keyringAccounts(cache *itemAccounts) (map[string]bool, error) {
	svc, err := ss.NewSecretService()
	if err != nil {
		return nil, err
	}
	// The owner is read before the search: if the service restarts in
	// between, the paths are cached under the old owner and dropped at
	// the next listing.
	var owner string
	if err := svc.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, "org.freedesktop.secrets").Store(&owner); err != nil {
		return nil, err
	}
	coll := svc.GetLoginCollection()
	// As go-keyring's Get does before its search; the probe has already
	// refused a locked keyring, so this never prompts.
	if err := svc.Unlock(coll.Path()); err != nil {
		return nil, err
	}
	paths, err := svc.SearchItems(coll, map[string]string{"service": KeyringService})
	if err != nil {
		return nil, err
	}
	held := make(map[string]bool, len(paths))
	var unseen []dbus.ObjectPath
	if cache != nil {
		cache.mu.Lock()
		if cache.owner != owner {
			cache.owner, cache.m = owner, nil
		}
		for _, p := range paths {
			if u, ok := cache.m[string(p)]; ok {
				held[u] = true
			} else {
				unseen = append(unseen, p)
			}
		}
		cache.mu.Unlock()
	} else {
		unseen = paths
	}
	done := make(chan *dbus.Call, len(unseen))
	calls := make([]*dbus.Call, len(unseen))
	for i, p := range unseen {
		calls[i] = svc.Object("org.freedesktop.secrets", p).Go("org.freedesktop.DBus.Properties.Get", 0, done, "org.freedesktop.Secret.Item", "Attributes")
	}
	for range unseen {
		<-done
	}
	seen := make(map[string]string, len(unseen))
	for i, c := range calls {
		var v dbus.Variant
		if err := c.Store(&v); err != nil {
			return nil, err
		}
		attrs, ok := v.Value().(map[string]string)
		if !ok {
			return nil, fmt.Errorf("item %s: attributes of type %s", c.Path, v.Signature())
		}
		if attrs["service"] == KeyringService {
			held[attrs["username"]] = true
			seen[string(unseen[i])] = attrs["username"]
		}
	}
	if cache != nil {
		// Only the items found now: a deleted item's path is not kept.
		cache.mu.Lock()
		m := make(map[string]string, len(paths))
		for _, p := range paths {
			if u, ok := cache.m[string(p)]; ok {
				m[string(p)] = u
			} else if u, ok := seen[string(p)]; ok {
				m[string(p)] = u
			}
		}
		cache.m = m
		cache.mu.Unlock()
	}
	return held, nil
}
