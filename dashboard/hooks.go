package dashboard

import (
	"net/http"
	"time"
)

// HookRow is one hook as the Hooks and keys page lists it. Its command
// and match are the user's (or whoever could add a hook), rendered as
// text.
type HookRow struct {
	ID, Event, Match, Shell string
	Timeout                 time.Duration
}

// HookProfile is a profile and its hooks.
type HookProfile struct {
	Profile string
	Hooks   []HookRow
}

// HooksView is the Hooks section's list: every profile, with its hooks.
type HooksView struct {
	Profiles []HookProfile
	// Err says why the list could not be read ("" when it could).
	Err string
}

// KeyRow is one stored credential: its name and where it is kept, never
// its value nor any part of it.
type KeyRow struct {
	Provider, Alias, Backend, Status, Detail string
	Updated                                  time.Time
}

// KeysView is the Keys section's list.
type KeysView struct {
	Keys []KeyRow
	// Backend is where new keys go, and Why it is that one; Err says why
	// the store could not be read.
	Backend, Why, Err string
}

// RenderHooks writes the Hooks and keys page's shell: its forms, and no
// data (its script fetches the lists with the page key).
func RenderHooks(w http.ResponseWriter) {
	render(w, http.StatusOK, "hooks", page{Title: "Hooks and keys", Nav: "hooks"})
}

// RenderHookList writes the Hooks section's list.
func RenderHookList(w http.ResponseWriter, v HooksView) {
	status := http.StatusOK
	if v.Err != "" {
		status = http.StatusServiceUnavailable
	}
	render(w, status, "hooklist", v)
}

// RenderKeyList writes the Keys section's list.
func RenderKeyList(w http.ResponseWriter, v KeysView) {
	status := http.StatusOK
	if v.Err != "" {
		status = http.StatusServiceUnavailable
	}
	render(w, status, "keylist", v)
}
