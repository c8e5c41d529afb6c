// Package oauth is the daemon's side of OAuth 2.1 for remote MCP servers,
// as the MCP authorization specification describes it: discovery (the
// server's 401 and its protected resource metadata, RFC 9728, then the
// authorization server's metadata, RFC 8414), dynamic client registration
// (RFC 7591) where offered, the authorization code grant with PKCE (S256)
// through the user's browser and a loopback redirect, resource indicators
// (RFC 8707), refresh and revocation (RFC 7009).
//
// The protocol steps are mcp-go's (client/transport's OAuthHandler, which
// checks the metadata's issuer and that the resource metadata names the
// server addressed); this package gives it an HTTP client that refuses
// plain http beyond loopback and bounds every answer, keeps what it
// returns in the credential store (never in Ringlet's plain files), and
// runs the browser step.
package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/names"
)

// Provider is the credential store's provider name of the records kept
// here, one per profile and server.
const Provider = "mcp-oauth"

// Keys is the credential store as this package uses it.
type Keys interface {
	Get(credentials.Ref) (credentials.Secret, error)
	Set(credentials.Ref, credentials.Secret) (credentials.Entry, error)
	Remove(credentials.Ref) (credentials.Entry, error)
}

// Record is one server's authorization: the client Ringlet is at the
// authorization server and the tokens it holds. It lives only in the
// credential store.
type Record struct {
	Profile string `json:"profile"`
	Server  string `json:"server"`
	// URL is the server's URL when it was authorized: the token is sent
	// to that URL only, so a server re-added with another URL never gets
	// it.
	URL string `json:"url"`
	// ResourceMetadata is the protected resource metadata URL the server's
	// 401 named, if it named one.
	ResourceMetadata string `json:"resource_metadata,omitempty"`
	Issuer           string `json:"issuer"`
	// RevocationEndpoint is where --revoke sends the tokens, if the
	// authorization server has one.
	RevocationEndpoint string          `json:"revocation_endpoint,omitempty"`
	ClientID           string          `json:"client_id"`
	ClientSecret       string          `json:"client_secret,omitempty"`
	AuthMethod         string          `json:"auth_method,omitempty"`
	Registered         bool            `json:"registered,omitempty"` // by dynamic client registration
	Scopes             []string        `json:"scopes,omitempty"`
	Token              transport.Token `json:"token"`
	Authorized         time.Time       `json:"authorized"`
}

// Ref is where the record of a profile's server lives in the credential
// store: <server>.<profile> (a server name has no dot, so the two never
// run together), or a digest of it when that is too long for a name.
func Ref(profile, server string) credentials.Ref {
	alias := server + "." + profile
	if !names.Valid(alias) {
		sum := sha256.Sum256([]byte(profile + "\x00" + server))
		alias = server + "." + hex.EncodeToString(sum[:])[:63-len(server)]
	}
	return credentials.Ref{Provider: Provider, Alias: alias}
}

// Load reads the record of a profile's server; credentials.ErrNotFound
// when there is none.
func Load(k Keys, profile, server string) (*Record, error) {
	s, err := k.Get(Ref(profile, server))
	if err != nil {
		return nil, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(s.Reveal())
	if err != nil {
		return nil, fmt.Errorf("the stored authorization of %s is damaged; run 'ringlet mcp auth %s %s' again", server, profile, server)
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("the stored authorization of %s is damaged; run 'ringlet mcp auth %s %s' again", server, profile, server)
	}
	if r.Profile != profile || r.Server != server {
		return nil, fmt.Errorf("%s: %w", Ref(profile, server), credentials.ErrNotFound)
	}
	return &r, nil
}

// Save writes r as the record of its profile's server. The store holds
// keys as one line of text: the record is base64url-encoded JSON.
func Save(k Keys, r *Record) error {
	raw, err := json.Marshal(r) //nolint:gosec // G117: the record goes to the credential store only, which is where secrets belong
	if err != nil {
		return err
	}
	enc := base64.RawURLEncoding.EncodeToString(raw)
	if len(enc) > credentials.MaxKeyLen {
		return fmt.Errorf("the authorization server's tokens are too large for the credential store (%d bytes encoded, at most %d)", len(enc), credentials.MaxKeyLen)
	}
	if _, err := k.Set(Ref(r.Profile, r.Server), credentials.NewSecret(enc)); err != nil {
		return fmt.Errorf("store the authorization in the credential store: %w", err)
	}
	return nil
}

// Delete removes the record of a profile's server; none is no error.
func Delete(k Keys, profile, server string) error {
	_, err := k.Remove(Ref(profile, server))
	if errors.Is(err, credentials.ErrNotFound) {
		return nil
	}
	return err
}
