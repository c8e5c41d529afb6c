package oauth

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// maxBody bounds every answer of a server during discovery, registration
// and token requests: metadata and tokens are a few kilobytes.
const maxBody = 256 << 10

// CheckEndpoint refuses an address the daemon would send a code, a
// token or a client secret to, or send the user's browser to: https, or
// plain http to a loopback host only (a token never crosses a network in
// the clear), with a host and no user info.
func CheckEndpoint(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("the authorization server's %s %q is not an absolute https URL", what, s)
	}
	if u.User != nil {
		return fmt.Errorf("the authorization server's %s %q carries user info", what, s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("the authorization server's %s %q is plain http to a host that is not loopback; only https is accepted", what, s)
	}
	return fmt.Errorf("the authorization server's %s %q is not an https URL", what, s)
}

func loopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// HTTPClient is the client of every request of the OAuth steps: each
// address is checked (CheckEndpoint), no redirect is followed (metadata
// and tokens come from the address asked), and an answer past maxBody
// fails rather than growing a buffer.
func HTTPClient(base http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     guard{next: base},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type guard struct{ next http.RoundTripper }

func (g guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := CheckEndpoint("endpoint", r.URL.String()); err != nil {
		return nil, err
	}
	resp, err := g.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &bounded{rc: resp.Body, left: maxBody}
	return resp, nil
}

// errTooLarge ends the read of an answer past maxBody.
var errTooLarge = fmt.Errorf("the answer is larger than %d KiB", maxBody>>10)

type bounded struct {
	rc   io.ReadCloser
	left int64
}

func (b *bounded) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more says whether the answer ended exactly here.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *bounded) Close() error { return b.rc.Close() }

// short makes an error of the OAuth steps fit one line: mcp-go quotes an
// error answer's body whole.
func short(err error) error {
	if err == nil {
		return nil
	}
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return errors.New(s)
}
