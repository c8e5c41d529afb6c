package api

import "github.com/neullabs/ringlet/profile"

// RateLimits answers GET, PATCH and DELETE /api/profiles/{alias}/ratelimits:
// a profile's rate limits, a minute each, 0 for none.
type RateLimits struct {
	Profile string `json:"profile"`
	profile.RateLimits
}

// RateLimitsUpdate is the body of PATCH /api/profiles/{alias}/ratelimits:
// the limits to change (0 removes one); those absent stay.
type RateLimitsUpdate struct {
	SessionRequests  *int64 `json:"session_requests,omitempty"`
	SessionTokens    *int64 `json:"session_tokens,omitempty"`
	SessionToolCalls *int64 `json:"session_tool_calls,omitempty"`
	ProfileRequests  *int64 `json:"profile_requests,omitempty"`
	ProfileTokens    *int64 `json:"profile_tokens,omitempty"`
	ProfileToolCalls *int64 `json:"profile_tool_calls,omitempty"`
}

// Apply changes l as u says.
func (u RateLimitsUpdate) Apply(l *profile.RateLimits) {
	for _, f := range []struct {
		dst *int64
		v   *int64
	}{
		{&l.SessionRequests, u.SessionRequests}, {&l.SessionTokens, u.SessionTokens}, {&l.SessionToolCalls, u.SessionToolCalls},
		{&l.ProfileRequests, u.ProfileRequests}, {&l.ProfileTokens, u.ProfileTokens}, {&l.ProfileToolCalls, u.ProfileToolCalls},
	} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
}

// IsZero reports whether u changes nothing.
func (u RateLimitsUpdate) IsZero() bool { return u == RateLimitsUpdate{} }

// RateLimitState is one rate limit that paces a session, as 'sessions
// inspect' shows it (GET /api/sessions/{id}).
type RateLimitState struct {
	// Scope is "session" (this session's own bucket) or "profile" (the
	// bucket all sessions of its profile share).
	Scope string `json:"scope"`
	// Limit is what it paces: requests, tokens or tool_calls.
	Limit     string `json:"limit"`
	PerMinute int64  `json:"per_minute"`
	// Available is what the bucket holds now, up to PerMinute: what may
	// pass at once. Negative while tokens are in debt.
	Available float64 `json:"available"`
	// Throttled counts the refusals by this bucket since it was made
	// (the session's start, or the last change of the profile's limits):
	// this session's for scope session, all sessions' for scope profile.
	Throttled int64 `json:"throttled"`
}
