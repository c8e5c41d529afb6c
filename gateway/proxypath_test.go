package gateway

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/profile"
)

func TestCleanProxyPath(t *testing.T) {
	t.Parallel()
	accepted := []string{
		"/v1/messages",
		"/v1/chat/completions",
		"/v1/messages/count_tokens",
		"/v1/models/claude-x",
		"/v1/models/claude-sonnet-4-5-20250929",
		"/v1/responses",
		"/messages",
		"/v1/models/gpt-4o:beta",
		"/v1/files/file-abc~1_2.3",
		"/v1/x%20y", // an encoded space is just a byte in a segment
		"/v1/...",   // three dots is a name, not a dot segment
		"/v1/.hidden",
		"/v1/a..b",
		"/v1/messages/",
	}
	for _, p := range accepted {
		got, err := CleanProxyPath(p)
		if err != nil {
			t.Errorf("CleanProxyPath(%q): got error %v, want it accepted", p, err)
		} else if got != p {
			t.Errorf("CleanProxyPath(%q): got %q, want it unchanged", p, got)
		}
	}
	refused := []string{
		"",
		"/",
		"v1/messages",
		"/..",
		"/../v1/messages",
		"/v1/../../etc/passwd",
		"/v1/messages/..",
		"/.",
		"/./v1/messages",
		"/v1/./messages",
		"/v1/%2e%2e/x",
		"/v1/%2E%2E/x",
		"/v1/%2e./x",
		"/v1/.%2e/x",
		"/v1/%2e/x",
		"/v1%2fmessages",
		"/v1%2Fmessages",
		"/v1/%2f%2fevil.com",
		"/v1%5cmessages",
		"/v1%5Cmessages",
		"/v1\\messages",
		"/\\evil.com",
		"//evil.com/v1/messages",
		"/v1//messages",
		"/v1/messages//",
		"/@evil.com/v1",
		"/v1/messages@evil.com",
		"/v1/%40evil.com",
		"/v1/\x00",
		"/v1/%00",
		"/v1/messages%00.json",
		"/v1/\t",
		"/v1/\r\nHost: evil.com",
		"/v1/\n",
		"/v1/a b",
		"/v1/\x7f",
		"/v1/\x1b[31m",
		"/v1/mödel",
		"/v1/\u202e",
		"/v1/\xff",
		"/v1/%252e%252e/x",
		"/v1/%252f",
		"/v1/%25",
		"/v1/%2525",
		// '?' and '#' would end the path once joined to the base,
		// leaving a dot segment behind.
		"/..#",
		"/..?x=1",
		"/v1/..#/messages",
		"/v1/messages?beta=true",
		"/v1/messages#frag",
	}
	for _, p := range refused {
		if got, err := CleanProxyPath(p); err == nil {
			t.Errorf("CleanProxyPath(%q): got %q accepted, want an error", p, got)
		}
	}
}

func TestUpstreamURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base, path, query string
		want                    string // "" means refused
	}{
		{"base with path", "https://api.example.com/v1", "/chat/completions", "", "https://api.example.com/v1/chat/completions"},
		{"base without path", "https://api.anthropic.com", "/v1/messages", "", "https://api.anthropic.com/v1/messages"},
		{"base with trailing slash", "https://openrouter.ai/api/v1/", "/chat/completions", "", "https://openrouter.ai/api/v1/chat/completions"},
		{"query is the client's", "https://api.example.com/v1", "/models", "limit=5&after=x", "https://api.example.com/v1/models?limit=5&after=x"},
		{"loopback base", "http://127.0.0.1:8080/v1", "/messages", "", "http://127.0.0.1:8080/v1/messages"},
		{"encoded byte kept", "https://api.example.com/v1", "/x%20y", "", "https://api.example.com/v1/x%20y"},
		// upstreamURL holds even when handed a path CleanProxyPath
		// would refuse.
		{"userinfo trick", "https://api.example.com/v1", "@evil.com/x", "", ""},
		{"host suffix trick", "https://api.example.com/v1", ".evil.com/x", "", ""},
		{"port trick", "https://api.example.com", ":8443/x", "", ""},
		{"no leading slash", "https://api.example.com/v1", "x", "", ""},
		{"sibling of the base path", "https://api.example.com/v1", "beta/x", "", ""},
		{"bad escape", "https://api.example.com/v1", "/%zz", "", ""},
		{"query in the path leaves the base path", "https://api.example.com/v1", "?x=/v1/", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base, err := profile.ParseBaseURL(tt.base)
			if err != nil {
				t.Fatalf("ParseBaseURL(%q): %v", tt.base, err)
			}
			u, err := upstreamURL(base, base.String(), tt.path, tt.query)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("upstreamURL(%q, %q): got %s, want an error", tt.base, tt.path, u)
				}
				return
			}
			if err != nil {
				t.Fatalf("upstreamURL(%q, %q): got error %v, want %s", tt.base, tt.path, err, tt.want)
			}
			if got := u.String(); got != tt.want {
				t.Fatalf("upstreamURL(%q, %q): got %s, want %s", tt.base, tt.path, got, tt.want)
			}
		})
	}
}

// plainPath reports whether p is made only of unreserved URL bytes and
// slashes, the shape of every real provider API path.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0) {
			return false
		}
	}
	return true
}

// FuzzCleanProxyPath checks that every path CleanProxyPath accepts, once
// joined to a base, stays on the base's scheme and host, carries no user
// info, and stays under the base path, also after the URL is re-parsed,
// resolved against "." and cleaned the way a server might.
func FuzzCleanProxyPath(f *testing.F) {
	bases := []string{"https://api.example.com/v1", "https://api.example.com"}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := CleanProxyPath(p)
		if err != nil {
			return
		}
		if got != p {
			t.Fatalf("CleanProxyPath(%q): got %q, want it unchanged", p, got)
		}
		for _, b := range bases {
			base, err := profile.ParseBaseURL(b)
			if err != nil {
				t.Fatal(err)
			}
			prefix := base.Path + "/"
			u, err := upstreamURL(base, base.String(), p, "")
			if err != nil {
				if plainPath(p) {
					t.Fatalf("upstreamURL(%s, %q): got error %v for a plain accepted path", b, p, err)
				}
				continue // refused is safe
			}
			check := func(what string, u *url.URL) {
				t.Helper()
				if u.Scheme != "https" || u.Host != "api.example.com" || u.User != nil {
					t.Fatalf("%s of %q: got scheme %q host %q user %v, want https://api.example.com and no user", what, p, u.Scheme, u.Host, u.User)
				}
				if !strings.HasPrefix(u.EscapedPath(), prefix) {
					t.Fatalf("%s of %q: got escaped path %q, want it under %q", what, p, u.EscapedPath(), prefix)
				}
				// path.Clean drops a trailing slash, so the base path
				// itself is the most it may clean to.
				if c := path.Clean(u.Path); c+"/" != prefix && !strings.HasPrefix(c, prefix) {
					t.Fatalf("%s of %q: path %q cleans to %q, outside %q", what, p, u.Path, c, prefix)
				}
			}
			check("upstreamURL", u)
			again, err := url.Parse(u.String())
			if err != nil {
				t.Fatalf("re-parse %s: %v", u, err)
			}
			check("re-parsed URL", again)
			for _, ref := range []string{".", "./", ""} {
				r, err := url.Parse(ref)
				if err != nil {
					t.Fatal(err)
				}
				res := again.ResolveReference(r)
				if res.Scheme != "https" || res.Host != "api.example.com" || res.User != nil {
					t.Fatalf("%s resolved against %q: got %s, want https://api.example.com", u, ref, res)
				}
				if c := path.Clean("/" + res.Path); c+"/" != prefix && !strings.HasPrefix(c, prefix) && !(prefix == "/" && c == "/") {
					t.Fatalf("%s resolved against %q: path %q cleans to %q, outside %q", u, ref, res.Path, c, prefix)
				}
			}
		}
	})
}
