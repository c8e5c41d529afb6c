package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/agentconfig"
	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// profiles answers /api/profiles: it checks a profile against the
// catalogs and Ringlet's own files before it is recorded and stored, and
// ends what a deleted profile leaves (its sessions, hooks and MCP
// servers).
type profiles struct {
	o profilesOptions
}

// profilesOptions configure the profiles.
type profilesOptions struct {
	Profiles *profile.Store
	Keys     KeyStore
	// CatalogDir holds the provider and agent catalogs.
	CatalogDir string
	// Executable is the ringlet binary the Claude Code hook runs.
	Executable string
	// Launch checks a profile's paths against Ringlet's own files.
	Launch *launch.Builder
	// Sessions, Hooks and MCP hold what is a profile's besides its file.
	Sessions *sessions
	Hooks    *hook.Store
	MCP      *mcpGateway
	Rec      *recorder
	Log      *slog.Logger
}

func (pr *profiles) handleProfileUpdate(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "alias")
	var u api.ProfileUpdate
	if !decodeJSON(w, r, &u) {
		return
	}
	cat, err := profile.LoadCatalog(pr.o.CatalogDir)
	if err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	change := func(p *profile.Profile) {
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&p.Model, u.Model)
		set(&p.Workspace, u.Workspace)
		set(&p.Endpoint, u.Endpoint)
		set(&p.Network, u.Network)
		if u.ReadOnly != nil {
			p.ReadOnly = *u.ReadOnly
		}
		if u.ReadWrite != nil {
			p.ReadWrite = *u.ReadWrite
		}
		if u.AllowGitConfig != nil {
			p.AllowGitConfig = *u.AllowGitConfig
		}
		if u.TrustWorkspace != nil {
			p.TrustWorkspace = *u.TrustWorkspace
		}
		if u.StrictHooks != nil {
			p.StrictHooks = *u.StrictHooks
		}
		if u.AllowHosts != nil {
			p.AllowHosts = *u.AllowHosts
		}
		if u.Protect != nil {
			p.Protect = *u.Protect
		}
		if u.Unprotect != nil {
			p.Unprotect = *u.Unprotect
		}
		if u.MaxProcs != nil {
			p.MaxProcs = *u.MaxProcs
		}
		if u.MaxMemory != nil {
			p.MaxMemory = *u.MaxMemory
		}
		if u.TmpSize != nil {
			p.TmpSize = *u.TmpSize
		}
	}
	// Refuse an invalid change before it is recorded as allowed.
	cur, err := pr.o.Profiles.Get(alias)
	if err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	change(&cur)
	if err := cur.Validate(cat); err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	if err := pr.exposesOwn(alias, append(append([]string{cur.Workspace}, cur.ReadOnly...), cur.ReadWrite...)...); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_profile", err.Error())
		return
	}
	if !pr.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindProfileUpdate, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Allow, Detail: audit.DetailJSON(u)}) {
		return
	}
	p, err := pr.o.Profiles.Update(cat, alias, change)
	if err != nil {
		_ = pr.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindProfileUpdate, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Error, Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
		profileError(w, pr.o.Log, err)
		return
	}
	pr.o.Log.Info("profile updated", "profile", alias)
	keys, _ := pr.o.Keys.List()
	writeJSON(w, http.StatusOK, pr.view(p, keys))
}

// profileError maps profile, catalog and credential errors to statuses.
func profileError(w http.ResponseWriter, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, profile.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, profile.ErrExists):
		writeError(w, http.StatusConflict, "exists", err.Error())
	case errors.Is(err, errNoKey):
		writeError(w, http.StatusConflict, "missing_key", err.Error())
	case errors.Is(err, audit.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", "refused: the action could not be recorded in the audit log ("+rootCause(err)+")")
	case strings.HasPrefix(err.Error(), "invalid ") || strings.HasPrefix(err.Error(), "unknown ") ||
		strings.Contains(err.Error(), "workspace") || strings.HasPrefix(err.Error(), "agent ") || strings.HasPrefix(err.Error(), "provider "):
		writeError(w, http.StatusBadRequest, "invalid_profile", err.Error())
	default:
		log.Error("profile operation failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (pr *profiles) view(p profile.Profile, keys []credentials.Entry) api.ProfileView {
	return pr.views([]profile.Profile{p}, keys)[0]
}

// views builds the views of ps from one listing of the keys and of the
// sessions, so that a list of n profiles costs no n² lookups.
func (pr *profiles) views(ps []profile.Profile, keys []credentials.Entry) []api.ProfileView {
	stored := make(map[credentials.Ref]string, len(keys))
	for _, e := range keys {
		if e.Status == "ok" || e.Status == "unindexed" {
			stored[e.Ref()] = "stored (" + e.Backend + ")"
		}
	}
	sessions := map[string]int{}
	for _, sess := range pr.o.Sessions.list() {
		sessions[sess.Profile.Alias]++
	}
	out := make([]api.ProfileView, 0, len(ps))
	for _, p := range ps {
		v := api.ProfileView{Profile: p, Home: pr.o.Profiles.Home(p.Alias), UnsandboxedHome: pr.o.Profiles.UnsandboxedHome(p.Alias), Key: "missing", Sessions: sessions[p.Alias]}
		v.Protected, _ = p.Protected() // checked when stored
		if v.Protected == nil {
			v.Protected = []string{}
		}
		if k, ok := stored[p.CredentialRef()]; ok {
			v.Key = k
		}
		out = append(out, v)
	}
	return out
}

func (pr *profiles) handleProfileList(w http.ResponseWriter, r *http.Request) {
	ps, err := pr.o.Profiles.List()
	if err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	keys, _ := pr.o.Keys.List()
	writeJSON(w, http.StatusOK, api.ProfileList{Profiles: pr.views(ps, keys)})
}

func (pr *profiles) handleProfileGet(w http.ResponseWriter, r *http.Request) {
	p, err := pr.o.Profiles.Get(chi.URLParam(r, "alias"))
	if err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	keys, _ := pr.o.Keys.List()
	writeJSON(w, http.StatusOK, pr.view(p, keys))
}

func (pr *profiles) handleProfileCreate(w http.ResponseWriter, r *http.Request) {
	var req api.ProfileRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	cat, err := profile.LoadCatalog(pr.o.CatalogDir)
	if err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	p := profile.Profile{Alias: req.Alias, Agent: req.Agent, Provider: req.Provider, Model: req.Model, Workspace: req.Workspace, Endpoint: req.Endpoint, Command: req.Command,
		Network: req.Network, ReadOnly: req.ReadOnly, ReadWrite: req.ReadWrite, AllowGitConfig: req.AllowGitConfig, TrustWorkspace: req.TrustWorkspace, AllowHosts: req.AllowHosts,
		Protect: req.Protect, Unprotect: req.Unprotect,
		MaxProcs: req.MaxProcs, MaxMemory: req.MaxMemory, TmpSize: req.TmpSize, StrictHooks: req.StrictHooks}
	if err := p.Validate(cat); err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	if err := pr.exposesOwn(p.Alias, append(append([]string{p.Workspace}, p.ReadOnly...), p.ReadWrite...)...); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_profile", err.Error())
		return
	}
	if !pr.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindProfileCreate, Profile: p.Alias, Actor: audit.ActorAdmin, Target: p.Agent + "@" + p.Provider, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"agent": p.Agent, "provider": p.Provider, "model": p.Model, "workspace": p.Workspace, "network": p.Network, "ro": p.ReadOnly, "rw": p.ReadWrite, "allow_git_config": p.AllowGitConfig, "trust_workspace": p.TrustWorkspace, "allow_hosts": p.AllowHosts,
			"protect": p.Protect, "unprotect": p.Unprotect, "max_procs": p.MaxProcs, "max_memory": p.MaxMemory, "tmp_size": p.TmpSize, "strict_hooks": p.StrictHooks})}) {
		return
	}
	created, err := pr.o.Profiles.Create(cat, p)
	if err != nil {
		_ = pr.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindProfileCreate, Profile: p.Alias, Actor: audit.ActorAdmin, Decision: audit.Error, Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
		profileError(w, pr.o.Log, err)
		return
	}
	if created.Agent == "claude" {
		// One 'hooks add' then guards Claude Code's own tools too, in
		// and out of the sandbox.
		for _, home := range []string{pr.o.Profiles.Home(created.Alias), pr.o.Profiles.UnsandboxedHome(created.Alias)} {
			if err := hook.InstallClaude(filepath.Join(home, ".claude"), pr.o.Executable); err != nil {
				pr.o.Log.Error("could not install the Claude Code hook", "profile", created.Alias, "err", err)
				writeError(w, http.StatusInternalServerError, "internal", "profile created, but its Claude Code hook could not be installed: "+err.Error())
				return
			}
		}
	}
	// What the agent's config holds now is what the user set up: the
	// first approval of what of it runs code.
	if _, err := approveAgentConfig(pr.o.Profiles, created); err != nil {
		pr.o.Log.Error("could not approve the agent config", "profile", created.Alias, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "profile created, but its agent config could not be approved: "+err.Error())
		return
	}
	pr.o.Log.Info("profile created", "profile", created.Alias, "agent", created.Agent, "provider", created.Provider)
	keys, _ := pr.o.Keys.List()
	w.Header().Set("Location", "/api/profiles/"+created.Alias)
	writeJSON(w, http.StatusCreated, pr.view(created, keys))
}

func (pr *profiles) handleProfileDelete(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "alias")
	p, err := pr.o.Profiles.Get(alias)
	if err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	purge := r.URL.Query().Get("purge_key") == "true"
	if !pr.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindProfileDelete, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"purge_key": purge})}) {
		return
	}
	// Both records before anything is deleted: a key removal that could
	// not be recorded must not leave the profile half deleted.
	if purge && !pr.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindCredentialRemove, Profile: alias, Actor: audit.ActorAdmin, Target: p.CredentialRef().String(), Decision: audit.Allow}) {
		return
	}
	for _, sess := range pr.o.Sessions.list() {
		if sess.Profile.Alias == alias {
			pr.o.Sessions.end(r.Context(), sess.ID, "profile deleted", audit.ActorAdmin)
		}
	}
	if _, err := pr.o.Profiles.Delete(alias); err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	if err := pr.o.Hooks.DeleteProfile(alias); err != nil {
		pr.o.Log.Error("could not delete the profile's hooks", "profile", alias, "err", err)
	}
	// A profile created again under this alias starts with no upstream
	// MCP servers and no pinned tools.
	pr.o.MCP.forgetProfile(alias)
	keyRemoved := false
	if purge {
		if _, err := pr.o.Keys.Remove(p.CredentialRef()); err == nil {
			keyRemoved = true
		} else if !errors.Is(err, credentials.ErrNotFound) {
			keychainError(w, pr.o.Log, err)
			return
		}
	}
	pr.o.Log.Info("profile deleted", "profile", alias, "key_removed", keyRemoved)
	writeJSON(w, http.StatusOK, api.ProfileDeleted{Deleted: alias, KeyRemoved: keyRemoved})
}

// catalogs answers /api/providers and /api/agents from the catalogs in
// dir.
type catalogs struct {
	dir string
	rec *recorder
	log *slog.Logger
}

func (cg *catalogs) handleProviderList(w http.ResponseWriter, r *http.Request) {
	cat, err := profile.LoadCatalog(cg.dir)
	if err != nil {
		profileError(w, cg.log, err)
		return
	}
	out := []profile.Provider{}
	for _, id := range cat.ProviderIDs() {
		out = append(out, cat.Providers[id])
	}
	writeJSON(w, http.StatusOK, api.ProviderList{Providers: out})
}

func (cg *catalogs) handleProviderGet(w http.ResponseWriter, r *http.Request) {
	cat, err := profile.LoadCatalog(cg.dir)
	if err != nil {
		profileError(w, cg.log, err)
		return
	}
	p, err := cat.Provider(chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (cg *catalogs) handleProviderAdd(w http.ResponseWriter, r *http.Request) {
	var p profile.Provider
	var body api.ProviderRequest
	if !decodeJSON(w, r, &body) {
		return
	}
	p = profile.Provider{ID: body.ID, Name: body.Name, BaseURL: body.BaseURL, Format: body.Format, Auth: body.Auth, Endpoints: body.Endpoints}
	if err := p.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_provider", err.Error())
		return
	}
	cat, err := profile.LoadCatalog(cg.dir)
	if err != nil {
		profileError(w, cg.log, err)
		return
	}
	// A provider of the same id is replaced only when asked: replacing
	// the built-in anthropic sends every anthropic profile's key to the
	// new base URL.
	old, exists := cat.Providers[p.ID]
	if exists && !body.Replace {
		writeError(w, http.StatusConflict, "exists", fmt.Sprintf("provider %s already exists (%s); to replace it, pass --replace (\"replace\": true)", p.ID, describeProvider(old)))
		return
	}
	detail := map[string]any{"provider": p.ID, "base_url": p.BaseURL, "format": p.Format, "auth": p.Auth}
	var replaced *profile.Provider
	if exists {
		replaced = &old
		detail["replaced"] = map[string]any{"base_url": old.BaseURL, "format": old.Format, "auth": old.Auth, "builtin": old.Builtin}
	}
	if !cg.rec.recordOr503(w, r, audit.Record{Kind: audit.KindProviderAdd, Actor: audit.ActorAdmin, Target: p.ID, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)}) {
		return
	}
	if err := cat.AddProvider(p); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_provider", err.Error())
		return
	}
	cg.log.Info("provider added", "provider", p.ID, "base_url", p.BaseURL, "replaced", exists)
	writeJSON(w, http.StatusCreated, api.ProviderAdded{Provider: cat.Providers[p.ID], Replaced: replaced})
}

// describeProvider says what a provider is, for a message: whether it is
// built in, and where it sends requests.
func describeProvider(p profile.Provider) string {
	src := "added in providers.toml"
	if p.Builtin {
		src = "built-in"
	}
	return fmt.Sprintf("%s: %s, %s format, %s auth", src, p.BaseURL, p.Format, p.Auth)
}

func (cg *catalogs) handleAgents(w http.ResponseWriter, r *http.Request) {
	cat, err := profile.LoadCatalog(cg.dir)
	if err != nil {
		profileError(w, cg.log, err)
		return
	}
	out := []profile.Agent{}
	for _, id := range cat.AgentIDs() {
		out = append(out, cat.Agents[id])
	}
	writeJSON(w, http.StatusOK, api.AgentList{Agents: out})
}

// exposesOwn refuses a path that would show Ringlet's own files to a
// sandbox of profile alias.
func (pr *profiles) exposesOwn(alias string, paths ...string) error {
	return pr.o.Launch.CheckOwn(pr.o.Profiles.Home(alias), paths...)
}

// handleProfileConnect writes Ringlet's MCP server into the profile's
// agent's own configuration, in both its HOMEs: the sandboxed one (where
// the agent reaches the daemon through its forwarder, on the provider
// network) and the unsandboxed one ('profiles env', where it reaches the
// daemon at the address this request came to). The entry names the
// session's /mcp and takes the token from the agent's environment when it
// connects; no token is written. Recorded as a profile.update before
// anything is written.
func (pr *profiles) handleProfileConnect(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "alias")
	var req api.ConnectRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	p, err := pr.o.Profiles.Get(alias)
	if err != nil {
		profileError(w, pr.o.Log, err)
		return
	}
	agent := req.Agent
	if agent == "" {
		agent = p.Agent
	}
	if !slices.Contains(connectAgents, agent) {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("connect writes the MCP configuration of %s; %q is not one of them", strings.Join(connectAgents, ", "), agent))
		return
	}
	if agent != p.Agent {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("profile %s runs %s, which would never read a configuration of %s; connect a profile of that agent", alias, p.Agent, agent))
		return
	}
	self := "http://" + r.Host
	boxed := self
	if p.Network == "" || p.Network == sandbox.NetProvider {
		boxed = launch.ForwarderBase
	}
	type target struct{ home, base string }
	targets := []target{{pr.o.Profiles.Home(alias), boxed}, {pr.o.Profiles.UnsandboxedHome(alias), self}}
	if !pr.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindProfileUpdate, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"connect": agent, "server": agentconfig.Server})}) {
		return
	}
	out := api.Connected{Profile: alias, Agent: agent, Server: agentconfig.Server}
	// Connect approves the sandboxed HOME's config with Ringlet's server
	// in it, so what the agent changed there since the last approval is
	// put back first, not approved with it.
	note, err := resetAgentConfig(r.Context(), pr.o.Rec, pr.o.Profiles, p, pr.o.Profiles.Home(alias), audit.ActorAdmin)
	if err != nil {
		writeError(w, http.StatusConflict, "connect_failed", err.Error())
		return
	}
	if note != "" {
		out.Warnings = append(out.Warnings, note)
	}
	for _, t := range targets {
		var path string
		switch agent {
		case "claude":
			path, err = agentconfig.Claude(filepath.Join(t.home, ".claude"))
		case "codex":
			path, err = agentconfig.Codex(filepath.Join(t.home, ".codex"), t.base)
		case "opencode":
			path, err = agentconfig.OpenCode(t.home)
		}
		if err != nil {
			_ = pr.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindProfileUpdate, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Error,
				Detail: audit.DetailJSON(map[string]any{"connect": agent, "error": err.Error()})})
			writeError(w, http.StatusConflict, "connect_failed", err.Error())
			return
		}
		out.Files = append(out.Files, path)
	}
	if _, err := approveAgentConfig(pr.o.Profiles, p); err != nil {
		writeError(w, http.StatusConflict, "connect_failed", "connected, but the agent config could not be approved: "+err.Error())
		return
	}
	pr.o.Log.Info("profile connected", "profile", alias, "agent", agent)
	writeJSON(w, http.StatusOK, out)
}

// connectAgents are the agents whose MCP configuration connect writes.
var connectAgents = []string{"claude", "codex", "opencode"}
