// Package outbound is how the daemon reaches the servers a profile names
// (provider APIs, HTTP MCP servers) with a credential of the user's.
package outbound

import (
	"net"
	"net/http"
	"time"
)

// Transport is an HTTP transport that keeps up to 64 idle connections per
// server, so concurrent requests reuse them, and that reads no proxy from
// the environment: the daemon reads no environment below cmd, and a key
// must go only where the profile says.
func Transport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		Proxy:                 nil,
	}
}
