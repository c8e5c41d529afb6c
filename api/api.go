// Package api is the daemon's REST API as both sides see it: the body of
// every request and answer, with its JSON field names, which the gateway
// serves and package client (and through it the CLI) sends and reads.
// Change a name here and both sides change with it.
//
// Records that other packages own are answered as those packages define
// them: audit.Record, audit.VerifyResult and audit.UsageRow, hook.Hook
// and hook.Decision, credentials.Entry, profile.Profile (inside
// ProfileView), profile.Provider and profile.Agent, mcpserver.Config and
// mcpserver.Status, version.Info.
//
// It holds types, not behaviour: nothing here opens a file or a store.
package api

import "time"

// ErrorAnswer is the body of every error answer:
// {"error":{"code":"...","message":"..."}}.
type ErrorAnswer struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong: Code for programs, Message for people.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// SessionTokenPrefix starts every session token, so a leaked one is
// recognisable (and greppable) as Ringlet's, and a client can tell one
// from the admin token.
const SessionTokenPrefix = "rlt_"

// Status is the answer to GET /api/status.
type Status struct {
	Version        string  `json:"version"`
	PID            int     `json:"pid"`
	Listen         string  `json:"listen"`
	Started        string  `json:"started"`
	UptimeSeconds  float64 `json:"uptime_seconds"`
	StayAlive      bool    `json:"stay_alive"`
	IdleTimeout    string  `json:"idle_timeout"`
	RequestsActive int64   `json:"requests_in_flight"`
	EventStreams   int     `json:"event_streams"`
	Sessions       int     `json:"sessions"`
	Profiles       int     `json:"profiles"`
}

// Stopping is the answer to POST /api/daemon/stop: the daemon stops once
// it has answered.
type Stopping struct {
	PID      int  `json:"pid"`
	Stopping bool `json:"stopping"`
}

// TokenRotated is the answer to POST /api/daemon/rotate-token.
type TokenRotated struct {
	Rotated   bool   `json:"rotated"`
	TokenFile string `json:"token_file"`
}

// DaemonState is what a running daemon writes to daemon.json in its
// state directory, so that the CLI can find it and tell the user which
// process holds what.
type DaemonState struct {
	PID       int       `json:"pid"`
	Listen    string    `json:"listen"`
	URL       string    `json:"url"`
	Started   time.Time `json:"started"`
	Version   string    `json:"version"`
	StayAlive bool      `json:"stay_alive"`
	AuditLog  string    `json:"audit_log"` // "" when the daemon runs with --no-audit-log
}

// Health is the answer to GET /api/health: what the daemon itself can tell
// about the parts `ringlet doctor` checks. It holds no secret.
type Health struct {
	Version string      `json:"version"`
	Keys    HealthKeys  `json:"keys"`
	Audit   HealthAudit `json:"audit"`
}

// HealthKeys is the credential store: the backend new keys go to and why,
// or why the configured one cannot be used (Error).
type HealthKeys struct {
	Backend string `json:"backend,omitempty"`
	Why     string `json:"why,omitempty"`
	Error   string `json:"error,omitempty"`
}

// HealthAudit is the audit log: where it is and whether the daemon can
// write it now (Error says why not). Off when the daemon runs with
// --no-audit-log.
type HealthAudit struct {
	Off      bool   `json:"off,omitempty"`
	Path     string `json:"path,omitempty"`
	Writable bool   `json:"writable"`
	Error    string `json:"error,omitempty"`
}
