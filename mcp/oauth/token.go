package oauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// TokenStore is the token of one server's record, for mcp-go's
// OAuthHandler: it reads the record once and writes each refreshed token
// back to the credential store.
type TokenStore struct {
	keys Keys
	// seen is told every token value, so the server's answers can be
	// redacted of it.
	seen func(string)

	mu    sync.Mutex
	rec   *Record
	stale bool
	// unreachable is how the last request of Client failed to get an
	// answer from the authorization server (nil: it got one).
	unreachable error
}

// NewTokenStore returns the store of rec's token.
func NewTokenStore(keys Keys, rec *Record, seen func(string)) *TokenStore {
	s := &TokenStore{keys: keys, rec: rec, seen: seen}
	s.tell(rec.Token)
	return s
}

func (s *TokenStore) tell(t transport.Token) {
	if s.seen == nil {
		return
	}
	for _, v := range []string{t.AccessToken, t.RefreshToken} {
		if v != "" {
			s.seen(v)
		}
	}
}

// GetToken returns the token with its expiry brought forward, so that it
// is refreshed before it expires (by a quarter of its life, at most a
// minute); a token the server refused is returned as expired.
func (s *TokenStore) GetToken(ctx context.Context) (*transport.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.rec.Token
	switch {
	case s.stale:
		t.ExpiresAt = time.Unix(1, 0)
	case !t.ExpiresAt.IsZero():
		skew := time.Minute
		if t.ExpiresIn > 0 {
			skew = min(skew, time.Duration(t.ExpiresIn)*time.Second/4)
		}
		t.ExpiresAt = t.ExpiresAt.Add(-skew)
	}
	return &t, nil
}

// SaveToken keeps a refreshed token, in memory and in the credential
// store.
func (s *TokenStore) SaveToken(ctx context.Context, t *transport.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.tell(*t)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.Token, s.stale = *t, false
	return Save(s.keys, s.rec)
}

// Invalidate marks the token as refused by the server: the next request
// refreshes it first.
func (s *TokenStore) Invalidate() {
	s.mu.Lock()
	s.stale = true
	s.mu.Unlock()
}

// Client is the HTTP client of the requests that refresh s's token
// (HTTPClient's checks and bounds). It notes whether the last of them
// got no answer from the authorization server, or a 5xx: mcp-go reports
// every failed refresh as "authorization required", and only a refusal
// means the user must authorize again (Unreachable tells them apart).
func (s *TokenStore) Client(base http.RoundTripper) *http.Client {
	return HTTPClient(noting{next: base, s: s})
}

type noting struct {
	next http.RoundTripper
	s    *TokenStore
}

func (n noting) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := n.next.RoundTrip(r)
	failed := err
	if err == nil && resp.StatusCode >= 500 {
		failed = fmt.Errorf("%s answered %s", r.URL.Redacted(), resp.Status)
	}
	n.s.mu.Lock()
	n.s.unreachable = failed
	n.s.mu.Unlock()
	return resp, err
}

// Unreachable is why the last request of a refresh got no answer from
// the authorization server (or a 5xx); nil when it got one, a refusal
// included.
func (s *TokenStore) Unreachable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unreachable
}

// Config is the OAuthHandler configuration that sends rec's token and
// refreshes it with rec's client.
func Config(rec *Record, store *TokenStore, client *http.Client) transport.OAuthConfig {
	return transport.OAuthConfig{ClientID: rec.ClientID, ClientSecret: rec.ClientSecret, TokenEndpointAuthMethod: rec.AuthMethod,
		Scopes: rec.Scopes, TokenStore: store, PKCEEnabled: true, HTTPClient: client, ProtectedResourceMetadataURL: rec.ResourceMetadata}
}

// Revoke asks the authorization server to revoke rec's tokens (RFC
// 7009), the refresh token first (which ends the access tokens issued
// with it at most servers). Without a revocation endpoint it does
// nothing.
func Revoke(ctx context.Context, client *http.Client, rec *Record) error {
	if rec.RevocationEndpoint == "" {
		return nil
	}
	if err := CheckEndpoint("revocation endpoint", rec.RevocationEndpoint); err != nil {
		return err
	}
	for _, t := range []struct{ value, hint string }{{rec.Token.RefreshToken, "refresh_token"}, {rec.Token.AccessToken, "access_token"}} {
		if t.value == "" {
			continue
		}
		form := url.Values{"token": {t.value}, "token_type_hint": {t.hint}}
		basic := rec.ClientSecret != "" && rec.AuthMethod == "client_secret_basic"
		if !basic {
			form.Set("client_id", rec.ClientID)
			if rec.ClientSecret != "" {
				form.Set("client_secret", rec.ClientSecret)
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, rec.RevocationEndpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(url.QueryEscape(rec.ClientID), url.QueryEscape(rec.ClientSecret))
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("revoke the %s: %w", strings.ReplaceAll(t.hint, "_", " "), short(err))
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("revoke the %s: the authorization server answered %s", strings.ReplaceAll(t.hint, "_", " "), resp.Status)
		}
	}
	return nil
}
