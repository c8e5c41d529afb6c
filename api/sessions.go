package api

import (
	"time"

	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/profile"
)

// SessionRequest is the body of POST /api/sessions.
type SessionRequest struct {
	Profile string `json:"profile"`
	// TTL is the most the session lives (1m to 720h; the daemon's
	// sessions.max_ttl when empty).
	TTL string `json:"ttl,omitempty"`
	// Idle ends a session no launcher holds after that long with no
	// request (1m to 720h, or "0" for never; sessions.idle_timeout when
	// empty). Each request renews it, up to its TTL.
	Idle string `json:"idle,omitempty"`
	// Socket asks for a per-session Unix socket that serves only this
	// session's scope, for an agent in a sandbox with no network.
	Socket bool `json:"socket,omitempty"`
	// BaseURL and Home are what the agent sees inside its sandbox (the
	// forwarder's URL, its HOME path), for its launch templates.
	BaseURL string `json:"base_url,omitempty"`
	Home    string `json:"home,omitempty"`
	// Sandbox says the agent runs in a sandbox; a request for a socket or
	// an inside HOME path says so too.
	Sandbox bool `json:"sandbox,omitempty"`
	// Launch asks the daemon to prepare the launch of the profile's agent
	// for this session ('profiles run'): the daemon then decides the
	// socket, base URL, HOME and sandbox itself (the four fields above
	// stay empty), checks what the sandbox would refuse before the
	// session starts, and builds the plan that POST
	// /api/sessions/{id}/plan hands out or POST
	// /api/sessions/{id}/terminal runs.
	Launch *LaunchRequest `json:"launch,omitempty"`
	// Budget caps what this session may spend, under its profile's
	// budgets ('profiles run --budget'; docs/budgets.md).
	Budget *budget.Limits `json:"budget,omitempty"`
}

// LaunchRequest is what only the launcher of an agent knows: where it
// runs and what it was asked, from the user's shell.
type LaunchRequest struct {
	// Dir is the launcher's working directory: the workspace of a
	// profile that names none, and where a relative program is found.
	Dir string `json:"dir"`
	// Args follow the agent's own arguments.
	Args []string `json:"args,omitempty"`
	// Path is the launcher's PATH, where the agent's program is found.
	Path string `json:"path"`
	// Home is the launcher's HOME, where the agent's HOME appears in its
	// sandbox.
	Home string `json:"home"`
	// Term and Lang are the launcher's TERM and LANG, for the agent.
	Term string `json:"term,omitempty"`
	Lang string `json:"lang,omitempty"`
	// NoSandbox runs the agent without a sandbox, with the user's
	// privileges: warned and audited.
	NoSandbox bool `json:"no_sandbox,omitempty"`
	// Shims are the version managers' answers, asked in the launcher's
	// shell: a shim's path on Path, and the program it stands for, which
	// runs in its place (the daemon never asks a manager).
	Shims map[string]string `json:"shims,omitempty"`
}

// SessionInfo is what the API shows of a session: never its token or key.
type SessionInfo struct {
	ID       string    `json:"id"`
	Profile  string    `json:"profile"`
	Provider string    `json:"provider"`
	Agent    string    `json:"agent"`
	Created  time.Time `json:"created"`
	// Expires is when the session ends unless a request renews it:
	// Idle after LastUsed, and Deadline at the latest.
	Expires  time.Time `json:"expires"`
	Deadline time.Time `json:"deadline"`
	Idle     string    `json:"idle,omitempty"`
	LastUsed time.Time `json:"last_used"`
	Requests int64     `json:"requests"`
	// Sandboxed says whether the session was started for an agent in a
	// sandbox ('profiles run') or without one ('profiles env').
	Sandboxed bool `json:"sandboxed"`
	// Budget is the state of the session's own budget (its profile's
	// per-session caps and its own): spent, reserved, remaining. Only in
	// GET /api/sessions/{id}, for a session that has one.
	Budget *budget.State `json:"budget,omitempty"`
	// RateLimits are the rate limits that pace the session, with the
	// state of each. Only in GET /api/sessions/{id}.
	RateLimits []RateLimitState `json:"rate_limits,omitempty"`
	// Durable sessions outlive a restart of the daemon: those it holds
	// nothing for but their token ('profiles env').
	Durable bool `json:"durable"`
}

// SessionPrune is the body of POST /api/sessions/prune.
type SessionPrune struct {
	// Idle also ends the sessions no launcher holds that have served no
	// request for that long ("1h" when empty, "0" for none of them).
	Idle string `json:"idle,omitempty"`
	// DryRun says what would end, and ends nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// SessionRevokeAll is the body of POST /api/sessions/revoke: every live
// session, or every one of Profile.
type SessionRevokeAll struct {
	Profile string `json:"profile,omitempty"`
}

// SessionKill is the body of POST /api/sessions/{id}/kill and, with
// Profile or All, of POST /api/sessions/kill (one of them is required, so
// an empty body kills nothing). Reason is recorded in session.killed; Via
// says who asks through the admin token: "cli" from 'ringlet sessions
// kill', "" (api) from anyone else.
type SessionKill struct {
	Profile string `json:"profile,omitempty"`
	All     bool   `json:"all,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Via     string `json:"via,omitempty"`
}

// MaxKillReason bounds SessionKill.Reason, in bytes.
const MaxKillReason = 500

// SessionsKilled answers a kill: the sessions killed and what each kill
// ended.
type SessionsKilled struct {
	Sessions []KilledSession `json:"sessions"`
}

// KilledSession is one session killed: its token refused, its streams
// and MCP calls cut, its sandbox's process tree gone (Sandbox: "killed";
// "none" when it had no sandbox the daemon could find, whose agent its
// launcher stops; or why killing it failed), its profile's stdio MCP
// servers stopped (MCPServers), within Took.
type KilledSession struct {
	SessionInfo
	Reason     string `json:"reason"`
	By         string `json:"by"`
	Sandbox    string `json:"sandbox"`
	Terminal   bool   `json:"terminal,omitempty"`
	MCPServers int    `json:"mcp_servers"`
	Took       string `json:"took"`
}

// SessionsEnded answers POST /api/sessions/prune and /revoke: the
// sessions ended (with dry_run, those that would be), each with why.
type SessionsEnded struct {
	Sessions []EndedSession `json:"sessions"`
	DryRun   bool           `json:"dry_run,omitempty"`
}

// EndedSession is a session that a prune or revoke ended, and why.
type EndedSession struct {
	SessionInfo
	Reason string `json:"reason"`
}

// SessionStarted is the answer to POST /api/sessions: the only time the
// session token is shown.
type SessionStarted struct {
	SessionInfo
	Token   string         `json:"token"`
	BaseURL string         `json:"base_url"`
	Launch  profile.Launch `json:"launch"`
	Socket  string         `json:"socket,omitempty"` // the per-session socket, when asked for
	Home    string         `json:"home"`             // the profile's HOME on the host
	// Warnings are what the user should know of a launch, one sentence
	// each (running without a sandbox, on the host's network, ...).
	Warnings []string `json:"warnings,omitempty"`
}

// SessionList is the answer to GET /api/sessions.
type SessionList struct {
	Sessions []SessionInfo `json:"sessions"`
}

// LaunchPlan is the answer to POST /api/sessions/{id}/plan: the launch
// the daemon prepared for the session, which the launcher runs as it is.
// It is handed out once.
type LaunchPlan struct {
	// Argv is the command line, its program absolute; it carries no
	// secret (every user of the host can read it in /proc).
	Argv []string `json:"argv"`
	// Env is the whole environment of Argv: empty for a sandbox, the
	// agent's own (its session token among them) without one.
	Env []string `json:"env"`
	// Dir is the working directory of Argv; empty for a sandbox.
	Dir string `json:"dir,omitempty"`
	// Files are handed to Argv on descriptors 3, 4, ... through pipes:
	// bwrap's options (for --args 3), which hold the session token, and
	// its seccomp filter.
	Files [][]byte `json:"files,omitempty"`
	// Sandbox says whether Argv runs the agent in a sandbox.
	Sandbox bool `json:"sandbox"`
	// Trees are the sandbox's workspace and read-write directories: the
	// launcher holds a sandbox.Lease on them until its sandbox exits, as
	// the daemon does until the session ends.
	Trees []string `json:"trees,omitempty"`
}

// TerminalStart is the body of POST /api/sessions/{id}/terminal, which
// runs the session's launch plan under a pseudo-terminal of the daemon:
// the initial window size.
type TerminalStart struct {
	Cols uint16 `json:"cols"`
	Rows uint16 `json:"rows"`
}

// TerminalInfo describes a remote terminal.
type TerminalInfo struct {
	Session  string    `json:"session"`
	Profile  string    `json:"profile"`
	Started  time.Time `json:"started"`
	PID      int       `json:"pid"`
	Running  bool      `json:"running"`
	ExitCode int       `json:"exit_code"`
	Viewers  int       `json:"viewers"`
}

// TerminalList is the answer to GET /api/terminals.
type TerminalList struct {
	Terminals []TerminalInfo `json:"terminals"`
}

// TerminalControl is a text message from a viewer of a terminal's
// WebSocket (binary messages are keystrokes).
type TerminalControl struct {
	Type   string `json:"type"` // resize, signal
	Cols   uint16 `json:"cols,omitempty"`
	Rows   uint16 `json:"rows,omitempty"`
	Signal string `json:"signal,omitempty"` // INT, TERM, HUP, KILL
}

// LeaseEvent is one line of the answer to POST /api/sessions/{id}/lease
// (newline-delimited JSON), which lasts as long as the lease.
type LeaseEvent struct {
	// Held: the daemon holds the session for this launcher (the first
	// line).
	Held bool `json:"held,omitempty"`
	// Restarting: the daemon stops gracefully and keeps the session for
	// the next one, which admits it again if its launcher holds it again
	// within GraceSeconds of its start. The agent's requests meanwhile
	// fail to connect.
	Restarting   bool  `json:"restarting,omitempty"`
	GraceSeconds int64 `json:"grace_seconds,omitempty"`
	// Ended: the session is over (its agent exited, it was revoked,
	// expired, or the daemon stopped without keeping it); Reason says
	// why, and Killed that it was killed ('sessions kill'): the launcher
	// stops its agent at once (an ended one, after a grace).
	Ended  bool   `json:"ended,omitempty"`
	Killed bool   `json:"killed,omitempty"`
	Reason string `json:"reason,omitempty"`
}
