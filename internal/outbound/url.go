package outbound

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
)

// ParseURL checks the address of a server the daemon sends a credential
// to (what names it in errors: "base URL", "MCP server URL"): http or
// https with a host and a valid port, no user info, query or fragment (a
// query is where keys get put, and the URL is shown and audited), and
// plain http only to a loopback host, so a key never crosses a network in
// the clear.
func ParseURL(what, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("%s %q: want https://host[:port][/path]", what, s)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%s %q: no user info, query or fragment allowed", what, s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s %q: the port must be a number from 1 to 65535", what, s)
		}
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%s %q: plain http is allowed only for loopback hosts; use https", what, s)
	}
	return u, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	// Parsed, not matched by prefix: "127.example.com" is a DNS name.
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
