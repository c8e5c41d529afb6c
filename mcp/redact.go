package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/provider"
)

// given holds the credentials an upstream was sent, so that whatever it
// answers (results, errors, progress, tool definitions, what its
// transport logs) can have them redacted with the provider proxy's
// redactor: an upstream given a key may echo it, and the agent must never
// read it. It keeps the last few values sent, so a key replaced in the
// store is still redacted from a server that was given the old one.
type given struct {
	mu   sync.Mutex
	keys []string
	// compiled are keys' forms (raw, escaped, encoded), compiled once for
	// each change of keys: redaction runs on every string of every answer.
	compiled *provider.Secrets
}

// maxGivenKeys bounds the values kept: a server's secrets (at most
// mcpserver.MaxEnv) and the keys it was sent before, a few of each.
const maxGivenKeys = 4 * mcpserver.MaxEnv

func (g *given) add(key string) {
	if key == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range g.keys {
		if k == key {
			return
		}
	}
	if len(g.keys) == maxGivenKeys {
		g.keys = g.keys[1:]
	}
	g.keys = append(g.keys, key)
	g.compiled = provider.NewSecrets(g.keys...)
}

// secrets are the compiled forms of the keys given, nil when none.
func (g *given) secrets() *provider.Secrets {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.compiled
}

func (g *given) list() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.keys)
}

// LogValue keeps the keys out of any log line the struct reaches.
func (g *given) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// redact removes from s every credential the server was given.
func (u *upstream) redact(s string) string {
	if sec := u.given.secrets(); sec != nil {
		return sec.RedactString(s)
	}
	return s
}

// Redact removes from text every credential the profile's MCP servers
// were given (their --secret and header secret values, credentials and
// OAuth tokens), as their answers have them removed: for what a hook
// writes, which runs as the user and can read them.
func (s *Server) Redact(profile, text string) string {
	s.mu.Lock()
	h := s.hubs[profile]
	s.mu.Unlock()
	if h == nil || text == "" {
		return text
	}
	for _, u := range h.upstreams() {
		text = u.redact(text)
	}
	return text
}

// redactJSON redacts a JSON value from the server: every string in it,
// member names included, is decoded, redacted and encoded again, so a key
// written with JSON escapes is caught too. A value that has no escape and
// in which the redactor finds nothing is returned as it is.
func (u *upstream) redactJSON(raw []byte) ([]byte, error) {
	if u.given.secrets() == nil {
		return raw, nil
	}
	if bytes.IndexByte(raw, '\\') < 0 && u.redact(string(raw)) == string(raw) {
		return raw, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(u.redactValue(v))
}

// redactValue redacts every string in a decoded JSON value.
func (u *upstream) redactValue(v any) any {
	switch v := v.(type) {
	case string:
		return u.redact(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[u.redact(k)] = u.redactValue(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = u.redactValue(e)
		}
		return out
	default:
		return v
	}
}

// redactResult redacts a tool's result.
func (u *upstream) redactResult(res *mcpgo.CallToolResult) (*mcpgo.CallToolResult, error) {
	if res == nil || len(u.given.list()) == 0 {
		return res, nil
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	clean, err := u.redactJSON(raw)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(clean, raw) {
		return res, nil
	}
	msg := json.RawMessage(clean)
	out, err := mcpgo.ParseCallToolResult(&msg)
	if err != nil {
		return nil, fmt.Errorf("decode the redacted result: %w", err)
	}
	return out, nil
}

// redactParams redacts a notification's parameters (progress).
func (u *upstream) redactParams(p mcpgo.NotificationParams) mcpgo.NotificationParams {
	if len(u.given.list()) == 0 {
		return p
	}
	raw, err := json.Marshal(p.AdditionalFields)
	if err != nil {
		return mcpgo.NotificationParams{}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if dec.Decode(&fields) != nil {
		return mcpgo.NotificationParams{}
	}
	clean, _ := u.redactValue(fields).(map[string]any)
	return mcpgo.NotificationParams{AdditionalFields: clean}
}

// redactingHandler is a slog handler that redacts an upstream's
// credentials from the messages and attributes its transport logs.
type redactingHandler struct {
	next   slog.Handler
	redact func(string) string
}

func (h redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return redactingHandler{next: h.next.WithAttrs(clean), redact: h.redact}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{next: h.next.WithGroup(name), redact: h.redact}
}

// attr redacts one attribute: any value that is not a number, a bool, a
// time or a duration is logged as its redacted text.
func (h redactingHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, e := range g {
			clean[i] = h.attr(e)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
		return a
	default:
		return slog.String(a.Key, h.redact(v.String()))
	}
}
