package profile

import "fmt"

// RateLimits pace a profile's sessions, per minute: each session of the
// profile on its own, and all of them together. 0 is no limit. Requests
// are provider requests through the proxy; tokens are the input and
// output tokens the provider reports (counted when an answer ends, so a
// session in debt waits until it is paid off); tool calls are MCP
// tools/call requests through the gateway.
type RateLimits struct {
	SessionRequests  int64 `toml:"session_requests,omitempty" json:"session_requests,omitempty"`
	SessionTokens    int64 `toml:"session_tokens,omitempty" json:"session_tokens,omitempty"`
	SessionToolCalls int64 `toml:"session_tool_calls,omitempty" json:"session_tool_calls,omitempty"`
	ProfileRequests  int64 `toml:"profile_requests,omitempty" json:"profile_requests,omitempty"`
	ProfileTokens    int64 `toml:"profile_tokens,omitempty" json:"profile_tokens,omitempty"`
	ProfileToolCalls int64 `toml:"profile_tool_calls,omitempty" json:"profile_tool_calls,omitempty"`
}

// MaxRateLimit bounds each limit: a billion a minute is no limit at all.
const MaxRateLimit = 1_000_000_000

// IsZero reports whether no limit is set.
func (l RateLimits) IsZero() bool { return l == RateLimits{} }

// Validate refuses a negative or absurd limit.
func (l RateLimits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"session_requests", l.SessionRequests}, {"session_tokens", l.SessionTokens}, {"session_tool_calls", l.SessionToolCalls},
		{"profile_requests", l.ProfileRequests}, {"profile_tokens", l.ProfileTokens}, {"profile_tool_calls", l.ProfileToolCalls},
	} {
		if f.v < 0 || f.v > MaxRateLimit {
			return fmt.Errorf("rate limit %s must be from 0 (none) to %d a minute, not %d", f.name, MaxRateLimit, f.v)
		}
	}
	return nil
}
