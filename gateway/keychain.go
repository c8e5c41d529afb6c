package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/mcp/oauth"
)

// KeyStore is the credential store as the gateway uses it. Nothing here
// ever returns or logs a key.
type KeyStore interface {
	List() ([]credentials.Entry, error)
	Set(credentials.Ref, credentials.Secret) (credentials.Entry, error)
	Remove(credentials.Ref) (credentials.Entry, error)
	Get(credentials.Ref) (credentials.Secret, error)
	// Migrate moves every key to the backend named to, telling progress
	// about each; it stops at the first failure.
	Migrate(to string, progress func(credentials.MigrateResult)) error
	// Backend says which backend new keys go to and why, or why the
	// configured one cannot be used.
	Backend() (name, why string, err error)
}

// keychain answers /api/keychain: keys stored and removed by name,
// audited, never shown; a key that changes ends the sessions that hold it.
type keychain struct {
	o keychainOptions
}

// keychainOptions configure the keychain.
type keychainOptions struct {
	Keys     KeyStore
	Sessions *sessions
	Rec      *recorder
	Log      *slog.Logger
}

func (kc *keychain) handleKeychainList(w http.ResponseWriter, r *http.Request) {
	// The OAuth authorizations of MCP servers are no keys of the user's
	// to set or remove by hand: 'mcp auth --status' shows them.
	entries, err := kc.entries()
	if err != nil {
		keychainError(w, kc.o.Log, err)
		return
	}
	if entries == nil {
		entries = []credentials.Entry{}
	}
	writeJSON(w, http.StatusOK, api.KeychainList{Entries: entries})
}

// refuseOAuth refuses to set or remove by hand an OAuth authorization of
// an MCP server: 'mcp auth' keeps it whole (the tokens, the client, the
// URL it is bound to), and --revoke also revokes it at the server.
func refuseOAuth(w http.ResponseWriter, ref credentials.Ref) bool {
	if ref.Provider != oauth.Provider {
		return false
	}
	cmd := "'ringlet mcp auth PROFILE SERVER' (or --revoke to remove it)"
	if server, profile, ok := strings.Cut(ref.Alias, "."); ok && oauth.Ref(profile, server) == ref {
		cmd = fmt.Sprintf("'ringlet mcp auth %s %s' (or --revoke to remove it)", profile, server)
	}
	writeError(w, http.StatusBadRequest, "oauth_record", fmt.Sprintf("%s is the OAuth authorization of an MCP server, kept by 'ringlet mcp auth': use %s", ref, cmd))
	return true
}

func keychainRef(w http.ResponseWriter, r *http.Request) (credentials.Ref, bool) {
	ref, err := credentials.NewRef(chi.URLParam(r, "provider"), chi.URLParam(r, "alias"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_name", err.Error())
		return credentials.Ref{}, false
	}
	return ref, true
}

func (kc *keychain) handleKeychainSet(w http.ResponseWriter, r *http.Request) {
	ref, ok := keychainRef(w, r)
	if !ok || refuseOAuth(w, ref) {
		return
	}
	var body api.KeySet
	if !decodeJSON(w, r, &body) {
		return
	}
	if err := credentials.ValidateKey(body.Key); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_key", err.Error())
		return
	}
	if !kc.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindCredentialSet, Actor: actorOf(r), Target: ref.String(), Decision: audit.Allow}) {
		return
	}
	e, err := kc.o.Keys.Set(ref, credentials.NewSecret(body.Key))
	if err != nil {
		kc.recordFailure(r, audit.KindCredentialSet, ref, err)
		keychainError(w, kc.o.Log, err)
		return
	}
	kc.o.Log.Info("credential stored", "credential", ref.String(), "backend", e.Backend)
	writeJSON(w, http.StatusOK, api.KeychainChange{Entry: e, SessionsEnded: kc.o.Sessions.endUsing(r.Context(), ref, "key replaced")})
}

func (kc *keychain) handleKeychainRemove(w http.ResponseWriter, r *http.Request) {
	ref, ok := keychainRef(w, r)
	if !ok || refuseOAuth(w, ref) {
		return
	}
	if !kc.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindCredentialRemove, Actor: actorOf(r), Target: ref.String(), Decision: audit.Allow}) {
		return
	}
	e, err := kc.o.Keys.Remove(ref)
	if err != nil {
		kc.recordFailure(r, audit.KindCredentialRemove, ref, err)
		keychainError(w, kc.o.Log, err)
		return
	}
	kc.o.Log.Info("credential removed", "credential", ref.String(), "backend", e.Backend)
	writeJSON(w, http.StatusOK, api.KeychainChange{Entry: e, SessionsEnded: kc.o.Sessions.endUsing(r.Context(), ref, "key removed")})
}

// recordFailure follows an allowed record whose action then failed.
func (kc *keychain) recordFailure(r *http.Request, kind string, ref credentials.Ref, err error) {
	status := int64(http.StatusServiceUnavailable)
	if errors.Is(err, credentials.ErrNotFound) {
		status = http.StatusNotFound
	}
	_ = kc.o.Rec.record(r.Context(), audit.Record{Kind: kind, Actor: actorOf(r), Target: ref.String(), Decision: audit.Error, Status: status,
		Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
}

func keychainError(w http.ResponseWriter, log *slog.Logger, err error) {
	if errors.Is(err, credentials.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	log.Error("credential store", "err", err)
	writeError(w, http.StatusServiceUnavailable, "credential_store_unavailable", err.Error())
}

// handleKeychainMigrate moves every stored key to another backend. The
// keys do not change, so no session holding one is ended. As when the CLI
// did it itself, the move is not audited: no key is set or removed.
func (kc *keychain) handleKeychainMigrate(w http.ResponseWriter, r *http.Request) {
	var req api.KeychainMigrate
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.To != credentials.BackendFile && req.To != credentials.BackendKeyring {
		writeError(w, http.StatusBadRequest, "bad_request", "to must be file or keyring")
		return
	}
	results := []credentials.MigrateResult{}
	err := kc.o.Keys.Migrate(req.To, func(m credentials.MigrateResult) { results = append(results, m) })
	if err != nil {
		var moved []string
		for _, m := range results {
			if m.Result == "moved" {
				moved = append(moved, m.Entry.Ref().String())
			}
		}
		if len(moved) > 0 {
			err = fmt.Errorf("%w (moved before that: %s)", err, strings.Join(moved, ", "))
		}
		keychainError(w, kc.o.Log, err)
		return
	}
	kc.o.Log.Info("credentials migrated", "to", req.To, "keys", len(results))
	writeJSON(w, http.StatusOK, api.KeychainMigrated{Results: results})
}
