// Package audit is what Ringlet's append-only audit log holds and how it
// is read: one SQLite record per action, chained by SHA-256 so that
// editing, removing or reordering records is detectable, with the chain's
// tip anchored in a file outside the database. It queries and verifies a
// log read-only; package auditlog, which only the daemon uses, writes it.
package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Kinds of record.
const (
	KindDaemonStart      = "daemon.start"
	KindDaemonStop       = "daemon.stop"
	KindAuthFailure      = "auth.failure"
	KindTokenRotate      = "token.rotate"
	KindCredentialSet    = "credential.set"    //nolint:gosec // G101: a record kind, not a credential
	KindCredentialRemove = "credential.remove" //nolint:gosec // G101: a record kind, not a credential
	KindProfileCreate    = "profile.create"
	KindProfileDelete    = "profile.delete"
	KindProfileLaunch    = "profile.launch"
	KindSessionStart     = "session.start"
	KindSessionEnd       = "session.end"
	// KindSessionRestore: a session a previous daemon kept was admitted
	// again when this one started.
	KindSessionRestore   = "session.restore"
	KindToolCall         = "tool.call"
	KindHookDecision     = "hook.decision"
	KindProviderRequest  = "provider.request"
	KindSandboxViolation = "sandbox.violation"
	KindProviderAdd      = "provider.add"
	KindHookAdd          = "hook.add"
	KindHookRemove       = "hook.remove"
	KindProfileUpdate    = "profile.update"
	KindSandboxEgress    = "sandbox.egress"
	KindMCPAdd           = "mcp.add"
	KindMCPRemove        = "mcp.remove"
	KindMCPApprove       = "mcp.approve"
	KindPricesImport     = "prices.import"
	KindPricesReset      = "prices.reset"
	// KindMCPUpdate: a server's variables or headers were changed ('mcp set').
	KindMCPUpdate = "mcp.update"
	// KindMCPAuth: an OAuth authorization of an HTTP MCP server ('mcp
	// auth') was started, ended (authorized or failed) or revoked; the
	// detail names the step, the authorization server and the scopes,
	// never a token.
	KindMCPAuth = "mcp.auth"
	// KindMCPTools: tools of an MCP server were enabled or disabled, or
	// a profile's default for them changed ('mcp tools').
	KindMCPTools = "mcp.tools"
	// KindMCPSecrets: secrets were given to a stdio MCP server as it
	// started, each by its variable's name and its reference (detail
	// secrets), or are sent to an HTTP server in headers as the gateway
	// connects, by header name and reference (detail headers); never a
	// value. The server does not start (or is not connected) without it.
	KindMCPSecrets = "mcp.secrets"
	// KindMCPServerRestart: an upstream MCP server failed (it crashed, a
	// call got no answer in time, it could not be reached or started) and
	// is restarted after a backoff.
	KindMCPServerRestart = "mcp.server_restart"
	// KindMCPResourceRead: a session read an upstream MCP server's
	// resource (resources/read), with the decision and the answer's size.
	KindMCPResourceRead = "mcp.resource_read"
	// KindMCPPromptGet: a session got an upstream MCP server's prompt
	// (prompts/get), with the decision and the answer's size.
	KindMCPPromptGet = "mcp.prompt_get"
	// KindMCPPin: an MCP server was pinned without an approval: at its
	// first start (trust on first use: its program, tools, prompts and
	// resources), or pins of an older version were moved into the
	// whole-server form, or gained the server's prompts and resources.
	KindMCPPin = "mcp.pin"
	// KindMCPToolsChanged: an MCP server serves what was not approved (a
	// tool, prompt or resource added, changed, renamed or removed, or
	// another program): what it touches is hidden until 'ringlet mcp
	// approve'.
	KindMCPToolsChanged = "mcp.tools.changed"
	// KindAuditResume ends a spell during which the log could not be
	// written: since when, why, and what was refused meanwhile.
	KindAuditResume = "audit.resume"
	// KindAuditEpoch starts a new epoch on purpose (ringlet audit
	// new-epoch): the database did not match its anchor, and the record
	// says how and why it was accepted.
	KindAuditEpoch = "audit.epoch"
	// KindAgentConfigReset: at a sandboxed session's start, parts of the
	// agent's config that run code (named, never their values) differed
	// from what the user approved and were put back, the agent's version
	// moved aside.
	KindAgentConfigReset = "agent.config.reset"
	// KindAgentConfigApprove: the user approved the code-running parts of
	// a profile's agent config as they are in its sandboxed HOME.
	KindAgentConfigApprove = "agent.config.approve"
	// KindBudgetSet records a change to a profile's budgets ('ringlet
	// budgets set|clear', profiles create|set --budget).
	KindBudgetSet = "budget.set"
	// KindBudgetRefused is a provider request or tool call refused
	// because a budget could not take it; the detail names the budget and
	// the cap, and a streamed answer cut at a cap is one too.
	KindBudgetRefused = "budget.refused"
	// KindBudgetExhausted is a budget whose cap was reached, and what was
	// done about it (the session killed, or its requests refused).
	KindBudgetExhausted = "budget.exhausted"
	// KindSessionKilled: a session was killed ('sessions kill', the admin
	// MCP tool, an exhausted budget): who, why, and what was ended (its
	// sandbox's processes, its remote terminal, its profile's stdio MCP
	// servers). Its session.end follows.
	KindSessionKilled = "session.killed"
	// KindRateLimited: a request or tool call of a session was refused
	// by a rate limit of its profile (which limit, and when to retry).
	KindRateLimited = "rate.limited"
	// KindHookBypass: a tool call that did not go through the profile's
	// pre-tool-use hooks as the agent said it would: an MCP tools/call of
	// a Claude Code session with no PreToolUse allow for its tool_use_id,
	// or a provider answer's tool_use that never reached a hook. Denied
	// under the profile's strict hooks, allowed and flagged otherwise.
	KindHookBypass = "hook.bypass"
	// KindDashboardLogin: a browser exchanged a one-time code ('ringlet
	// ui') for a dashboard login; KindDashboardLogout: it logged out.
	// Codes that did not work are auth.failure records (reason
	// login_code).
	KindDashboardLogin  = "dashboard.login"
	KindDashboardLogout = "dashboard.logout"
	// KindToolResult: what an upstream MCP server answered to a
	// session's allowed tools/call, written when the answer came back
	// and before it goes to the agent: its size (bytes_out), how long
	// the upstream took, and its status (detail "status": ok, is_error,
	// rpc_error with its "code", upstream_error, timeout, canceled);
	// never its content. A child of the call's tool.call in its trace.
	KindToolResult = "tool.result"
	// KindTerminalAttach: a viewer attached to a remote agent's terminal
	// ('terminal attach', actor admin; the dashboard's terminal page,
	// actor dashboard), written before it sees or types anything.
	KindTerminalAttach = "terminal.attach"
)

// Kinds lists every kind, for validation and completion.
var Kinds = []string{
	KindDaemonStart, KindDaemonStop, KindAuthFailure, KindTokenRotate,
	KindCredentialSet, KindCredentialRemove, KindProfileCreate, KindProfileDelete,
	KindProfileLaunch, KindSessionStart, KindSessionEnd, KindSessionRestore, KindToolCall,
	KindHookDecision, KindProviderRequest, KindSandboxViolation, KindProviderAdd, KindHookAdd, KindHookRemove, KindProfileUpdate, KindSandboxEgress,
	KindMCPAdd, KindMCPRemove, KindMCPApprove, KindMCPUpdate, KindMCPTools, KindMCPSecrets, KindMCPAuth, KindMCPServerRestart, KindMCPResourceRead, KindMCPPromptGet, KindMCPPin, KindMCPToolsChanged, KindAuditResume, KindAuditEpoch,
	KindPricesImport, KindPricesReset, KindAgentConfigReset, KindAgentConfigApprove, KindBudgetSet, KindBudgetRefused, KindBudgetExhausted, KindSessionKilled, KindRateLimited, KindHookBypass,
	KindDashboardLogin, KindDashboardLogout, KindToolResult, KindTerminalAttach,
}

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
	Error = "error"
)

// Actors that are not a token.
const (
	ActorAdmin  = "admin"  // the daemon's admin token
	ActorCLI    = "cli"    // someone at the command line with no daemon running: 'ringlet audit new-epoch'
	ActorDaemon = "daemon" // the daemon itself
	// ActorDashboard is the user in the dashboard ('ringlet ui'): a
	// browser's login, which the admin token opened.
	ActorDashboard = "dashboard"
)

// Record is one audit event. Seq, PrevHash and Hash are set by the log.
type Record struct {
	Seq              int64           `json:"seq"`
	Time             time.Time       `json:"time"`
	Kind             string          `json:"kind"`
	Profile          string          `json:"profile,omitempty"`
	Session          string          `json:"session,omitempty"`
	Actor            string          `json:"actor,omitempty"`
	Target           string          `json:"target,omitempty"`
	Decision         string          `json:"decision,omitempty"`
	Status           int64           `json:"status,omitempty"`
	Duration         time.Duration   `json:"duration_ns,omitempty"`
	BytesIn          int64           `json:"bytes_in,omitempty"`
	BytesOut         int64           `json:"bytes_out,omitempty"`
	TokensIn         int64           `json:"tokens_in,omitempty"`
	TokensOut        int64           `json:"tokens_out,omitempty"`
	TokensCacheRead  int64           `json:"tokens_cache_read,omitempty"`
	TokensCacheWrite int64           `json:"tokens_cache_write,omitempty"`
	Detail           json.RawMessage `json:"detail,omitempty"`
	// TraceID, SpanID and ParentSpanID place the record in the causal
	// trace of an agent turn (W3C trace context sizes: 32 and 16 lower-case
	// hex digits; an empty parent is a trace's root). Link says how the
	// parent was found: LinkCarried (an id on the wire) or LinkInferred
	// (by session, tool, arguments and time). Records written before
	// traces existed have none.
	TraceID      string `json:"trace_id,omitempty"`
	SpanID       string `json:"span_id,omitempty"`
	ParentSpanID string `json:"parent_span_id,omitempty"`
	Link         string `json:"link,omitempty"`
	PrevHash     string `json:"prev_hash,omitempty"`
	Hash         string `json:"hash,omitempty"`
}

// Sanitize makes every text field valid UTF-8 so that what is stored,
// hashed and printed is the same string. Control characters are kept as
// data; printers escape them.
func (r *Record) Sanitize() {
	for _, p := range []*string{&r.Kind, &r.Profile, &r.Session, &r.Actor, &r.Target, &r.Decision, &r.TraceID, &r.SpanID, &r.ParentSpanID, &r.Link} {
		if !utf8.ValidString(*p) {
			*p = strings.ToValidUTF8(*p, "\uFFFD")
		}
	}
	if len(r.Detail) > 0 && !json.Valid(r.Detail) {
		b, _ := json.Marshal(map[string]string{"invalid_detail": strings.ToValidUTF8(string(r.Detail), "\uFFFD")})
		r.Detail = b
	} else if !utf8.Valid(r.Detail) {
		// json.Valid accepts invalid UTF-8 inside strings, the only place
		// a byte above 0x7F may appear, so replacing it keeps valid JSON.
		r.Detail = json.RawMessage(strings.ToValidUTF8(string(r.Detail), "\uFFFD"))
	}
}

// Canonical is the byte encoding that a record's hash covers: every field
// but the hashes, in a fixed order, integers as 8 big-endian bytes and
// strings length-prefixed, so no two different records encode the same.
// The trace fields follow the detail, behind a tag, only when one is set:
// a record without them (every record written before they existed)
// encodes as it always did, so old logs still verify.
func (r *Record) Canonical() []byte {
	return r.appendCanonical(make([]byte, 0, 256+len(r.Detail)))
}

// appendCanonical appends Canonical's encoding of r to b. It is written
// out without closures or conversions so that a caller's stack buffer
// stays on the stack: the chain hash of every commit goes through it.
func (r *Record) appendCanonical(b []byte) []byte {
	b = append(b, "ringlet-audit-v1"...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	b = appendCanonicalString(b, r.Kind)
	b = appendCanonicalString(b, r.Profile)
	b = appendCanonicalString(b, r.Session)
	b = appendCanonicalString(b, r.Actor)
	b = appendCanonicalString(b, r.Target)
	b = appendCanonicalString(b, r.Decision)
	for _, v := range [...]int64{r.Status, int64(r.Duration), r.BytesIn, r.BytesOut, r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(r.Detail)))
	b = append(b, r.Detail...)
	if r.HasTrace() {
		b = append(b, "trace"...)
		b = appendCanonicalString(b, r.TraceID)
		b = appendCanonicalString(b, r.SpanID)
		b = appendCanonicalString(b, r.ParentSpanID)
		b = appendCanonicalString(b, r.Link)
	}
	return b
}

// appendCanonicalString appends v length-prefixed.
func appendCanonicalString(b []byte, v string) []byte {
	return append(binary.BigEndian.AppendUint64(b, uint64(len(v))), v...)
}

// HasTrace reports whether any trace field is set.
func (r *Record) HasTrace() bool {
	return r.TraceID != "" || r.SpanID != "" || r.ParentSpanID != "" || r.Link != ""
}

// How a record's parent span was found.
const (
	LinkCarried  = "carried"  // an id the agent or provider sent (tool_use_id, call_id)
	LinkInferred = "inferred" // session, tool name, arguments digest and time window
)

// ChainHash is SHA-256(prev || canonical(r)): the hash of r chained to
// the record before it (Genesis for the first).
func ChainHash(prev []byte, r *Record) []byte {
	// Most records fit the stack buffer; a larger one grows on the heap.
	var buf [1024]byte
	sum := sha256.Sum256(r.appendCanonical(append(buf[:0], prev...)))
	return sum[:]
}

// Genesis is the hash the first record of a log is chained to.
func Genesis() []byte { return make([]byte, sha256.Size) }

// HMAC makes values matchable but not readable: two equal values give the
// same string, and without the key neither can be recovered or guessed.
type HMAC struct{ key []byte }

// NewHMAC returns an HMAC-SHA-256 with key. The key lives in the
// credential store, not in the database.
func NewHMAC(key []byte) *HMAC { return &HMAC{key: append([]byte(nil), key...)} }

// Sum returns "hmac:" and the first 16 bytes of HMAC-SHA-256(value), hex.
func (k *HMAC) Sum(value string) string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(value))
	return "hmac:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// DetailJSON encodes a record's detail (a map or a struct of plain values);
// an empty or unencodable one is no detail.
func DetailJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "{}" || string(b) == "null" {
		return nil
	}
	return b
}
