package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/agenthome"
	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/profile"
)

// A sandboxed agent can write its HOME, its own config included, so
// what of that config runs code is kept as the user approved it
// (package agenthome): approved when the user sets the profile up
// ('profiles create', 'connect', 'profiles config approve'), put back at
// every sandboxed session's start.

// resetAgentConfig puts the code-running parts of the config of p's
// agent in home, the profile's sandboxed HOME, back to what the user
// approved, and records what it reset before anything runs there:
// should either fail, the caller must not start the agent. It returns
// the line that tells the user, "" when nothing differed.
func resetAgentConfig(ctx context.Context, rec *recorder, store *profile.Store, p profile.Profile, home, actor string) (string, error) {
	dir := store.StateDir(p.Alias)
	approved, err := agenthome.LoadApproved(dir, p.Agent)
	if err != nil {
		return "", err
	}
	planned, err := agenthome.Differs(home, approved)
	if err != nil {
		return "", fmt.Errorf("the %s config in its HOME: %w", p.Agent, err)
	}
	if len(planned) == 0 {
		return "", nil
	}
	// Recorded before anything changes: a reset the log cannot hold is
	// not done, and the session is refused.
	if err := rec.record(ctx, audit.Record{Kind: audit.KindAgentConfigReset, Profile: p.Alias, Actor: actor, Target: p.Agent, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"items": planned})}); err != nil {
		return "", err
	}
	items, moved, rerr := agenthome.Reset(home, approved, filepath.Join(dir, "quarantine"))
	// Where the agent's version went, and anything that changed
	// meanwhile (another session of the profile) or went wrong.
	detail := map[string]any{"quarantine": moved}
	if extra := slices.DeleteFunc(slices.Clone(items), func(it string) bool { return slices.Contains(planned, it) }); len(extra) > 0 {
		detail["items"] = extra
	}
	decision := audit.Allow
	if rerr != nil {
		detail["error"] = rerr.Error()
		decision = audit.Error
	}
	if err := rec.record(ctx, audit.Record{Kind: audit.KindAgentConfigReset, Profile: p.Alias, Actor: actor, Target: p.Agent, Decision: decision,
		Detail: audit.DetailJSON(detail)}); err != nil {
		return "", errors.Join(rerr, err)
	}
	if rerr != nil {
		return "", fmt.Errorf("the %s config in its HOME could not be reset to the one you approved: %w", p.Agent, rerr)
	}
	return fmt.Sprintf("reset what the agent changed in its config that runs code (%s) to what you approved; its version is in %s: review it, put back what you want in %s and approve it with 'ringlet profiles config approve %s'",
		agenthome.Describe(items), moved, home, p.Alias), nil
}

// approveAgentConfig keeps the code-running parts of the config of p's
// agent in its sandboxed HOME, as they are, as what the user approved.
func approveAgentConfig(store *profile.Store, p profile.Profile) (agenthome.Approved, error) {
	a, err := agenthome.Snapshot(store.Home(p.Alias), p.Agent)
	if err != nil {
		return a, err
	}
	return a, agenthome.SaveApproved(store.StateDir(p.Alias), a)
}

// handleConfigApprove is POST /api/profiles/{alias}/config/approve.
func (pr *profiles) handleConfigApprove(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "alias")
	p, err := pr.o.Profiles.Get(alias)
	if err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	a, err := agenthome.Snapshot(pr.o.Profiles.Home(alias), p.Agent)
	if err != nil {
		writeError(w, http.StatusConflict, "approve_failed", err.Error())
		return
	}
	out := api.ConfigApproved{Profile: alias, Agent: p.Agent, Items: a.Names()}
	if !pr.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindAgentConfigApprove, Profile: alias, Actor: audit.ActorAdmin, Target: p.Agent, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"items": out.Items})}) {
		return
	}
	if err := agenthome.SaveApproved(pr.o.Profiles.StateDir(alias), a); err != nil {
		pr.o.Log.Error("could not keep the approved agent config", "profile", alias, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}
