package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/neullabs/ringlet/credentials"
)

// OTelHeader is one header of otel.headers: its name, the credential
// that holds its value, and a scheme word sent before it (Bearer, Token),
// as 'mcp add --header-secret' takes it.
type OTelHeader struct {
	Name   string
	Scheme string
	Ref    credentials.Ref
}

// Value is the header's value given the credential's.
func (h OTelHeader) Value(secret string) string {
	if h.Scheme == "" {
		return secret
	}
	return h.Scheme + " " + secret
}

// ParseOTelEndpoint reads otel.endpoint: an http or https URL with a host
// and no user, query or fragment (credentials go in otel.headers, from
// the credential store, never in the config file).
func ParseOTelEndpoint(v string) (*url.URL, error) {
	const want = "want a URL such as http://127.0.0.1:4318 or https://collector.example.com:4318"
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New(want)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("the scheme must be http or https; %s", want)
	}
	if u.User != nil {
		return nil, errors.New("a URL may not carry a user or password: store it ('ringlet keychain set otel NAME') and name it in otel.headers")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("a URL with a query or fragment is not an OTLP endpoint; " + want)
	}
	if h := u.Hostname(); h == "" || strings.ContainsAny(h, "%") {
		return nil, errors.New(want)
	}
	return u, nil
}

// ParseOTelHeaders reads otel.headers: NAME=[SCHEME ]<provider>/<alias>,
// comma separated, each name a valid HTTP header name given once.
func ParseOTelHeaders(v string) ([]OTelHeader, error) {
	if v == "" {
		return nil, nil
	}
	var out []OTelHeader
	for part := range strings.SplitSeq(v, ",") {
		name, ref, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !validHeaderName(name) {
			return nil, fmt.Errorf("want NAME=<provider>/<alias>, such as Authorization=otel/collector, got %q", part)
		}
		scheme := ""
		if sc, rest, ok := strings.Cut(ref, " "); ok {
			if !validHeaderName(sc) {
				return nil, fmt.Errorf("header %s: want [SCHEME ]<provider>/<alias>, such as Bearer otel/collector", name)
			}
			scheme, ref = sc, rest
		}
		r, err := credentials.ParseRef(ref)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", name, err)
		}
		if slices.ContainsFunc(out, func(h OTelHeader) bool { return strings.EqualFold(h.Name, name) }) {
			return nil, fmt.Errorf("header %s is given twice", name)
		}
		out = append(out, OTelHeader{Name: name, Scheme: scheme, Ref: r})
	}
	return out, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 5.1) that
// is also a gRPC metadata key (no upper case needed: gRPC lowers it).
func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			continue
		}
		return false
	}
	return true
}

// OTelProtocol is the effective otel.protocol.
func (c *Config) OTelProtocol() string { return or(c.OTel.Protocol, "http") }

// OTelContent is the effective otel.content.
func (c *Config) OTelContent() string { return or(c.OTel.Content, "digests") }

// checkOTel refuses headers (credentials) sent in clear text to a host
// other than this machine.
func (c *Config) checkOTel() error {
	if c.OTel.Headers == "" || c.OTel.Endpoint == "" {
		return nil
	}
	u, err := ParseOTelEndpoint(c.OTel.Endpoint)
	if err != nil || u.Scheme == "https" {
		return nil //nolint:nilerr // the key's own check reports a bad endpoint
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); strings.EqualFold(h, "localhost") || ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("otel.headers would be sent in clear text to %s: use an https:// otel.endpoint, or unset otel.headers", h)
}
