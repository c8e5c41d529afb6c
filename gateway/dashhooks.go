package gateway

import (
	"net/http"
	"slices"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/mcp/oauth"
)

// The dashboard's Hooks and keys page. Its changes (add, remove and test
// a hook; set and remove a key) are the API's own handlers on routes of
// the dashboard (routes.go): the same checks, the same audit records
// (whose actor says "dashboard", actorOf), the same answers. What is
// here renders the lists the page shows.

func handleHooksPage(w http.ResponseWriter, _ *http.Request) {
	dashboard.RenderHooks(w)
}

// handleUIHookList renders every profile with its hooks.
func (hk *hooks) handleUIHookList(w http.ResponseWriter, _ *http.Request) {
	profiles, err := hk.o.Profiles.List()
	if err != nil {
		hk.o.Log.Error("dashboard: list the profiles", "err", err)
		dashboard.RenderHookList(w, dashboard.HooksView{Err: "the profiles could not be read: " + err.Error()})
		return
	}
	v := dashboard.HooksView{Profiles: make([]dashboard.HookProfile, 0, len(profiles))}
	for _, p := range profiles {
		list, err := hk.o.Store.List(p.Alias)
		if err != nil {
			hk.o.Log.Error("dashboard: list the hooks", "profile", p.Alias, "err", err)
			v.Err = "the hooks of profile " + p.Alias + " could not be read: " + err.Error()
			continue
		}
		hp := dashboard.HookProfile{Profile: p.Alias, Hooks: make([]dashboard.HookRow, 0, len(list))}
		for _, h := range list {
			hp.Hooks = append(hp.Hooks, dashboard.HookRow{ID: h.ID, Event: h.Event, Match: h.Match, Shell: h.Shell, Timeout: h.Timeout})
		}
		v.Profiles = append(v.Profiles, hp)
	}
	dashboard.RenderHookList(w, v)
}

// entries are the stored keys 'keychain list' shows: not the OAuth
// authorizations of MCP servers ('mcp auth --status' shows those).
func (kc *keychain) entries() ([]credentials.Entry, error) {
	entries, err := kc.o.Keys.List()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(entries, func(e credentials.Entry) bool { return e.Provider == oauth.Provider }), nil
}

// handleUIKeyList renders the stored keys: names, backends and states,
// which is all an Entry holds (no value, nor any part of one).
func (kc *keychain) handleUIKeyList(w http.ResponseWriter, _ *http.Request) {
	entries, err := kc.entries()
	if err != nil {
		kc.o.Log.Error("credential store", "err", err)
		dashboard.RenderKeyList(w, dashboard.KeysView{Err: "the credential store could not be read: " + err.Error()})
		return
	}
	v := dashboard.KeysView{Keys: make([]dashboard.KeyRow, 0, len(entries))}
	if v.Backend, v.Why, err = kc.o.Keys.Backend(); err != nil {
		v.Err = "new keys cannot be stored: " + err.Error()
	}
	for _, e := range entries {
		v.Keys = append(v.Keys, dashboard.KeyRow{Provider: e.Provider, Alias: e.Alias, Backend: e.Backend, Status: e.Status, Detail: e.Detail, Updated: e.Updated})
	}
	dashboard.RenderKeyList(w, v)
}
