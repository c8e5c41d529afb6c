package mcpserver

import (
	"maps"
	"strings"
	"testing"
)

func TestHeaderValidation(t *testing.T) {
	t.Parallel()
	const u = "https://mcp.example.com/mcp"
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // empty: valid
	}{
		{"api key", Config{URL: u, HeaderSecrets: map[string]string{"X-API-Key": "mcp/search"}}, ""},
		{"bare alias", Config{URL: u, HeaderSecrets: map[string]string{"X-API-Key": "search"}}, ""},
		{"scheme", Config{URL: u, HeaderSecrets: map[string]string{"Authorization": "Token mcp/svc"}}, ""},
		{"plain", Config{URL: u, Headers: map[string]string{"X-Team": "infra\tops"}}, ""},
		{"stdio", Config{Command: []string{"srv"}, Headers: map[string]string{"X-Team": "a"}}, "for HTTP servers"},
		{"host", Config{URL: u, Headers: map[string]string{"host": "evil"}}, "Host is set by"},
		{"content length", Config{URL: u, Headers: map[string]string{"Content-Length": "1"}}, "Content-Length is set by"},
		{"connection", Config{URL: u, Headers: map[string]string{"Connection": "close"}}, "Connection is set by"},
		{"transfer encoding", Config{URL: u, Headers: map[string]string{"Transfer-Encoding": "chunked"}}, "Transfer-Encoding is set by"},
		{"session id", Config{URL: u, Headers: map[string]string{"mcp-session-id": "x"}}, "Mcp-Session-Id is set by"},
		{"protocol version", Config{URL: u, HeaderSecrets: map[string]string{"MCP-Protocol-Version": "mcp/x"}}, "Mcp-Protocol-Version is set by"},
		{"proxy auth", Config{URL: u, HeaderSecrets: map[string]string{"Proxy-Authorization": "mcp/x"}}, "Proxy-Authorization is set by"},
		{"bad name", Config{URL: u, Headers: map[string]string{"X Key": "a"}}, "invalid header name"},
		{"newline", Config{URL: u, Headers: map[string]string{"X-Team": "a\r\nHost: evil"}}, "control character"},
		{"nul", Config{URL: u, Headers: map[string]string{"X-Team": "a\x00"}}, "control character"},
		{"twice in any case", Config{URL: u, Headers: map[string]string{"X-Team": "a", "x-team": "b"}}, "given twice"},
		{"plain and secret", Config{URL: u, Headers: map[string]string{"X-Key": "a"}, HeaderSecrets: map[string]string{"x-key": "mcp/k"}}, "both plain"},
		{"credential and authorization", Config{URL: u, Credential: "docs/team", HeaderSecrets: map[string]string{"Authorization": "Token mcp/svc"}}, "not both"},
		{"credential and plain authorization", Config{URL: u, Credential: "docs/team", Headers: map[string]string{"authorization": "x"}}, "not both"},
		{"credential and api key", Config{URL: u, Credential: "docs/team", HeaderSecrets: map[string]string{"X-API-Key": "mcp/k"}}, ""},
		{"bad reference", Config{URL: u, HeaderSecrets: map[string]string{"X-API-Key": "../k"}}, "invalid secret reference"},
		{"template", Config{URL: u, HeaderSecrets: map[string]string{"Authorization": "Token {secret}"}}, "invalid secret reference"},
		{"two words", Config{URL: u, HeaderSecrets: map[string]string{"Authorization": "Token x mcp/k"}}, "invalid"},
		{"bad scheme", Config{URL: u, HeaderSecrets: map[string]string{"Authorization": "To:ken mcp/k"}}, "SCHEME one word"},
	} {
		tc.cfg.Name = "x"
		err := tc.cfg.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: got error %v, want none", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: got error %v, want one saying %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestHeaderValidationCanonical: names are kept in canonical form and
// references in their full form, so 'mcp set' finds them in any case.
func TestHeaderValidationCanonical(t *testing.T) {
	t.Parallel()
	c := Config{Name: "x", URL: "https://mcp.example.com/mcp", Headers: map[string]string{"x-team": "infra"},
		HeaderSecrets: map[string]string{"x-api-key": "search", "authorization": "Token svc"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"X-Team": "infra"}; !maps.Equal(c.Headers, want) {
		t.Errorf("headers: got %v, want %v", c.Headers, want)
	}
	if want := map[string]string{"X-Api-Key": "mcp/search", "Authorization": "Token mcp/svc"}; !maps.Equal(c.HeaderSecrets, want) {
		t.Errorf("header secrets: got %v, want %v", c.HeaderSecrets, want)
	}
	ch := EnvChange{UnsetHeaders: []string{"X-TEAM"}, HeaderSecrets: map[string]string{"x-api-key": "mcp/other"}, Headers: map[string]string{"X-Debug": "1"}}
	if err := ch.Apply(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"X-Debug": "1"}; !maps.Equal(c.Headers, want) {
		t.Errorf("headers after set: got %v, want %v", c.Headers, want)
	}
	if got := c.HeaderSecrets["X-Api-Key"]; got != "mcp/other" {
		t.Errorf("X-Api-Key after set: got %q, want mcp/other", got)
	}
	for _, bad := range []EnvChange{
		{UnsetHeaders: []string{"X-Nope"}},
		{Headers: map[string]string{"x-api-key": "plain now"}},
		{HeaderSecrets: map[string]string{"X-Debug": "mcp/k"}},
	} {
		d := c.Clone()
		if err := bad.Apply(&d); err == nil {
			t.Errorf("change %+v: got no error, want one", bad)
		}
	}
}

// FuzzHeaders: whatever headers a definition is given (the API takes them
// from any admin client), what Validate accepts can neither split a
// request nor replace a header of HTTP or MCP, and validates again as it
// is.
func FuzzHeaders(f *testing.F) {
	f.Add("X-API-Key", "v", "Authorization", "Token mcp/svc")
	f.Add("host", "evil", "x-key", "search")
	f.Add("X-A", "a\r\nHost: b", "Mcp-Session-Id", "mcp/x")
	f.Fuzz(func(t *testing.T, name, value, sname, ref string) {
		c := Config{Name: "x", URL: "https://mcp.example.com/mcp", Headers: map[string]string{name: value}, HeaderSecrets: map[string]string{sname: ref}}
		if c.Validate() != nil {
			return
		}
		for n, v := range c.Headers {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Errorf("header %s: value %q accepted", n, v)
			}
		}
		for _, n := range c.HeaderNames() {
			if cn, err := CheckHeaderName(n); err != nil || cn != n {
				t.Errorf("header %q accepted: %v (canonical %q)", n, err, cn)
			}
		}
		for n, v := range c.HeaderSecrets {
			if _, _, err := HeaderSecretRef(v); err != nil {
				t.Errorf("header secret %s: %q accepted: %v", n, v, err)
			}
		}
		again := c.Clone()
		if err := again.Validate(); err != nil || !maps.Equal(again.Headers, c.Headers) || !maps.Equal(again.HeaderSecrets, c.HeaderSecrets) {
			t.Errorf("validated again: %v, %v %v, want %v %v", err, again.Headers, again.HeaderSecrets, c.Headers, c.HeaderSecrets)
		}
	})
}
