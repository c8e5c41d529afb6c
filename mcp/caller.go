package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Caller is who an MCP request comes from, as the gateway authenticated it.
// The package never sees a token: the gateway decides the audience from
// the token that authenticated the request and hands over a Caller.
type Caller struct {
	// Binding identifies the credential (a hash of the token). An MCP
	// session belongs to the binding that created it; another credential
	// presenting its id is refused.
	Binding string
	// Profile and Session name the Ringlet session of a session token.
	// Both are empty for the admin token.
	Profile string
	Session string
	// API answers the caller's tools in process: for the admin token the
	// daemon's REST API with that token, for a session token the session's
	// own read-only endpoints (/info, /audit, /usage).
	API http.Handler
	// Vet runs the profile's pre-tool-use hooks on an upstream tool call
	// and audits the decision. It must fail closed. Nil for the admin
	// token, which has no upstream tools.
	Vet func(ctx context.Context, tool string, input json.RawMessage) Verdict
	// Access runs the profile's policy on a session's resources/read or
	// prompts/get of an upstream server, as Vet does on a tool call: the
	// pre-tool-use hooks (their input says the kind) and the audit
	// record. It must fail closed. Nil for the admin token; a nil Access
	// refuses every read.
	Access func(ctx context.Context, a Access) AccessVerdict
	// Refused audits a call refused before any hook ran, with the
	// reason: its tool is disabled with 'ringlet mcp tools', or (when
	// unapproved) it changed since approved and is hidden until 'ringlet
	// mcp approve'. Nil for the admin token.
	Refused func(ctx context.Context, tool string, input json.RawMessage, reason string, unapproved bool)
	// RefusedAccess audits a resources/read or prompts/get refused
	// before any hook ran (its server's resources or prompts are turned
	// off, or it changed since approved), with the reason. Nil for the
	// admin token.
	RefusedAccess func(ctx context.Context, a Access, reason string)
	// Admit paces tool calls (the profile's rate limits), with the
	// request's method (tools/call, resources/read, ...): "" admits the
	// call; else it is refused with a JSON-RPC error saying why, and
	// Retry-After. It counts and records its refusals. Nil: no limit.
	Admit func(ctx context.Context, method, tool string) (retry time.Duration, refused string)
	// Valid is done once the credential stops working (a session token
	// revoked or expired, the admin token rotated): the MCP sessions it
	// holds are ended then. Nil means it never stops.
	Valid context.Context
}

// Admin reports whether the caller holds the admin token.
func (c *Caller) Admin() bool { return c.Session == "" }

// scope is the MCP server a caller belongs to: "admin" or "profile:P".
// It is the package's one reading of the audience the gateway decided:
// ServeHTTP routes by it and upstream tools check it.
func (c *Caller) scope() string {
	if c.Admin() {
		return scopeAdmin
	}
	return "profile:" + c.Profile
}

const scopeAdmin = "admin"

// Verdict is the outcome of vetting a tool call.
type Verdict struct {
	Allow  bool
	Reason string
	// After, when set, judges the call's result (its JSON) before it goes
	// to the client: the profile's post-tool-use hooks. It must fail
	// closed; a refusal replaces the result with the reason, as an error.
	After func(ctx context.Context, output json.RawMessage) Verdict
	// Protocol makes a refusal a JSON-RPC error (its Reason the message)
	// instead of a tool result marked isError: a refusal of policy the
	// user must change, not one the model should work around.
	Protocol bool
	// Done, when set, is told what the upstream answered to an allowed
	// call (size and status, never the content) before the answer goes
	// on; an error withholds the result (its record could not be
	// written).
	Done func(ctx context.Context, o Outcome) error
}

// ToolUseIDMeta is the _meta member in which Claude Code sends, with an
// MCP tools/call, the id of the tool_use it makes the call for.
const ToolUseIDMeta = "claudecode/toolUseId"

type toolUseKey struct{}

// ToolUseID is the agent's tool_use id of the tools/call being vetted
// (from its _meta), "" when it carried none.
func ToolUseID(ctx context.Context) string {
	s, _ := ctx.Value(toolUseKey{}).(string)
	return s
}

type callerKey struct{}

// WithCaller returns ctx carrying c; the gateway sets it on every /mcp
// request before handing it to Server.ServeHTTP.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller of a request, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}
