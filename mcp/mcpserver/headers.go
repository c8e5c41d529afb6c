package mcpserver

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Limits of the headers of an HTTP server.
const (
	MaxHeaders     = 32
	maxHeaderValue = 8 << 10
)

// headerNameRE is a field name as HTTP defines it (a token), kept short.
var headerNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$") })

// schemeRE is the word a --header-secret value may put before the key
// (Bearer, Token, Key): one token, so the header's value is always that
// word, one space and the key as stored, and nothing of the key is
// computed or reformatted.
var schemeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`) })

// reservedHeaders are the headers --header and --header-secret may not
// set: those of the connection and the message (which the HTTP client
// writes), and those the MCP client sets for the protocol (Accept,
// Content-Type, Last-Event-ID and every Mcp-* header), which a header of
// the user's would replace. Proxy-* headers are for a proxy, not the
// server.
var reservedHeaders = []string{"Accept", "Connection", "Content-Encoding", "Content-Length", "Content-Type", "Cookie2", "Expect", "Host",
	"Keep-Alive", "Last-Event-Id", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// CheckHeaderName checks the name of a header sent to an HTTP server and
// returns its canonical form (x-api-key is X-Api-Key).
func CheckHeaderName(name string) (string, error) {
	if !headerNameRE().MatchString(name) {
		return "", fmt.Errorf("invalid header name %q: use letters, digits and '-', at most 128", name)
	}
	c := http.CanonicalHeaderKey(name)
	if slices.Contains(reservedHeaders, c) || strings.HasPrefix(c, "Mcp-") || strings.HasPrefix(c, "Proxy-") {
		return "", fmt.Errorf("the header %s is set by the gateway's HTTP or MCP client and cannot be given", c)
	}
	return c, nil
}

// ParseHeader parses NAME=VALUE (of --header, --header-secret) and puts
// the name in canonical form.
func ParseHeader(flag, kv string) (name, value string, err error) {
	name, value, ok := strings.Cut(kv, "=")
	if !ok {
		return "", "", fmt.Errorf("invalid %s %q: want NAME=VALUE", flag, kv)
	}
	if name, err = CheckHeaderName(name); err != nil {
		return "", "", err
	}
	return name, value, nil
}

// HeaderSecretRef splits the value of a --header-secret, "[SCHEME ]REF",
// into the word before the key (empty when none) and the key's reference
// in its full form (a bare alias is mcp/alias).
func HeaderSecretRef(v string) (scheme, ref string, err error) {
	ref = v
	if before, after, ok := strings.Cut(v, " "); ok {
		if !schemeRE().MatchString(before) {
			return "", "", fmt.Errorf("invalid header secret %q: want PROVIDER/ALIAS or SCHEME PROVIDER/ALIAS, SCHEME one word such as Token", v)
		}
		scheme, ref = before, after
	}
	if ref, err = SecretRef(ref); err != nil {
		return "", "", err
	}
	return scheme, ref, nil
}

// checkHeaderValue refuses what would split a header or the request: a
// control character (CR, LF, NUL...) other than a tab.
func checkHeaderValue(name, v string) error {
	if len(v) > maxHeaderValue {
		return fmt.Errorf("the value of header %s is longer than %d KiB", name, maxHeaderValue>>10)
	}
	if strings.IndexFunc(v, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) >= 0 {
		return fmt.Errorf("the value of header %s contains a control character (a newline?)", name)
	}
	return nil
}

// CheckHeaderSecretValue checks a key read from the store for the header
// name: a key that would split the request is never sent.
func CheckHeaderSecretValue(name, v string) error {
	if v == "" {
		return fmt.Errorf("the key of header %s is empty", name)
	}
	if err := checkHeaderValue(name, v); err != nil {
		return fmt.Errorf("the key of header %s cannot be sent: it is longer than %d KiB or contains a control character", name, maxHeaderValue>>10)
	}
	return nil
}

// validateHeaders checks Headers and HeaderSecrets, puts every name in
// its canonical form and every reference in its full form.
func (c *Config) validateHeaders() error {
	if len(c.Headers)+len(c.HeaderSecrets) == 0 {
		return nil
	}
	if c.URL == "" {
		return errors.New("--header and --header-secret are for HTTP servers (--url); a stdio server gets --env and --secret")
	}
	if len(c.Headers)+len(c.HeaderSecrets) > MaxHeaders {
		return fmt.Errorf("more than %d headers", MaxHeaders)
	}
	plain, secret := map[string]string{}, map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		cn, err := CheckHeaderName(name)
		if err != nil {
			return err
		}
		if _, ok := plain[cn]; ok {
			return fmt.Errorf("the header %s is given twice", cn)
		}
		if err := checkHeaderValue(cn, c.Headers[name]); err != nil {
			return err
		}
		plain[cn] = c.Headers[name]
	}
	for _, name := range slices.Sorted(maps.Keys(c.HeaderSecrets)) {
		cn, err := CheckHeaderName(name)
		if err != nil {
			return err
		}
		if _, ok := secret[cn]; ok {
			return fmt.Errorf("the header %s is given twice", cn)
		}
		if _, ok := plain[cn]; ok {
			return fmt.Errorf("the header %s is both plain (--header) and a secret (--header-secret); give it once", cn)
		}
		scheme, ref, err := HeaderSecretRef(c.HeaderSecrets[name])
		if err != nil {
			return fmt.Errorf("--header-secret %s: %w", cn, err)
		}
		secret[cn] = strings.TrimSpace(scheme + " " + ref)
	}
	_, p := plain["Authorization"]
	_, s := secret["Authorization"]
	if c.Credential != "" && (p || s) {
		return errors.New("--credential sends Authorization: Bearer; give the Authorization header or --credential, not both")
	}
	c.Headers, c.HeaderSecrets = nil, nil
	if len(plain) > 0 {
		c.Headers = plain
	}
	if len(secret) > 0 {
		c.HeaderSecrets = secret
	}
	return nil
}

// HeaderNames are the names of the headers sent to the server, plain and
// secret, sorted.
func (c Config) HeaderNames() []string {
	out := slices.Collect(maps.Keys(c.Headers))
	for n := range c.HeaderSecrets {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// applyHeaders changes c's headers as Apply does its variables; header
// names match whatever their case.
func (ch EnvChange) applyHeaders(c *Config) error {
	canon := func(m map[string]string) map[string]string {
		if len(m) == 0 {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[http.CanonicalHeaderKey(k)] = v
		}
		return out
	}
	c.Headers, c.HeaderSecrets = canon(c.Headers), canon(c.HeaderSecrets)
	for _, name := range ch.UnsetHeaders {
		name = http.CanonicalHeaderKey(name)
		if _, ok := c.Headers[name]; !ok {
			return fmt.Errorf("MCP server %s has no header %s to unset ('ringlet mcp show' lists them)", c.Name, name)
		}
		delete(c.Headers, name)
	}
	for _, name := range ch.UnsetHeaderSecrets {
		name = http.CanonicalHeaderKey(name)
		if _, ok := c.HeaderSecrets[name]; !ok {
			return fmt.Errorf("MCP server %s has no header secret %s to unset ('ringlet mcp show' lists them)", c.Name, name)
		}
		delete(c.HeaderSecrets, name)
	}
	for name, v := range canon(ch.Headers) {
		if _, ok := c.HeaderSecrets[name]; ok {
			return fmt.Errorf("%s is a secret header of MCP server %s; unset it with --unset-header-secret %s to give it a plain value", name, c.Name, name)
		}
		if c.Headers == nil {
			c.Headers = map[string]string{}
		}
		c.Headers[name] = v
	}
	for name, ref := range canon(ch.HeaderSecrets) {
		if _, ok := c.Headers[name]; ok {
			return fmt.Errorf("%s is a plain header of MCP server %s; unset it with --unset-header %s to make it a secret", name, c.Name, name)
		}
		if c.HeaderSecrets == nil {
			c.HeaderSecrets = map[string]string{}
		}
		c.HeaderSecrets[name] = ref
	}
	if len(c.Headers) == 0 {
		c.Headers = nil
	}
	if len(c.HeaderSecrets) == 0 {
		c.HeaderSecrets = nil
	}
	return nil
}
