package api

import (
	"time"

	"github.com/neullabs/ringlet/profile"
)

// SessionRequest is the body of POST /api/sessions.
type SessionRequest struct {
	Profile string `json:"profile"`
	TTL     string `json:"ttl,omitempty"`
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
}

// SessionInfo is what the API shows of a session: never its token or key.
type SessionInfo struct {
	ID       string    `json:"id"`
	Profile  string    `json:"profile"`
	Provider string    `json:"provider"`
	Agent    string    `json:"agent"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	Requests int64     `json:"requests"`
	// Sandboxed says whether the session was started for an agent in a
	// sandbox ('profiles run') or without one ('profiles env').
	Sandboxed bool `json:"sandboxed"`
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
}

// SessionList is the answer to GET /api/sessions.
type SessionList struct {
	Sessions []SessionInfo `json:"sessions"`
}

// LaunchRecorded is the answer to POST /api/sessions/{id}/launch, whose
// body is the launch's summary: free-form detail for the audit record, in
// which "sandbox" (bool) and "workspace" (string) are read.
type LaunchRecorded struct {
	Recorded bool `json:"recorded"`
}

// TerminalStart is the body of POST /api/sessions/{id}/terminal: the
// command line to run (the sandbox's, built by the CLI), its environment
// and the initial window size.
type TerminalStart struct {
	Argv []string `json:"argv"`
	// Files are handed to the program on descriptors 3, 4, ... (bwrap's
	// options for --args 3, its seccomp filter): a command line is
	// readable by everyone in /proc, and the options carry the session
	// token.
	Files [][]byte `json:"files,omitempty"`
	Env   []string `json:"env"`
	Dir   string   `json:"dir"`
	Cols  uint16   `json:"cols"`
	Rows  uint16   `json:"rows"`
	// Trees are the sandbox's workspace and read-write directories: the
	// daemon holds a sandbox.Lease on them while the agent runs, taking
	// over from the launcher that prepared them.
	Trees []string `json:"trees,omitempty"`
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
