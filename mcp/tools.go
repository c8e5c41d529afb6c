package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/names"
)

// Ringlet's own tools are thin: each builds one request to the daemon's
// REST API (for the admin token) or to the session's own endpoints (for a
// session token) and runs it in process through Caller.API, so MCP, REST
// and the CLI share validation, audit records and errors.

// Patterns of the names tools accept; the REST handlers check them again.
const (
	aliasPattern     = `^` + names.Pattern + `$`
	sessionPattern   = `^s_[0-9a-f]{16}$`
	hookPattern      = `^h_[0-9a-f]{8}$`
	timePattern      = `^[0-9A-Za-z:.+-]{1,40}$`
	cursorPattern    = `^[1-9][0-9]{0,18}$`
	durationPattern  = `^[0-9]{1,6}(\.[0-9]{1,3})?(ms|s|m)$`
	serverPattern    = `^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$`
	envNamePattern   = `^[A-Za-z_][A-Za-z0-9_]{0,127}$`
	secretRefPattern = `^(` + names.Pattern + `/)?` + names.Pattern + `$`
	// headerNamePattern is an HTTP field name; headerSecretPattern is a
	// reference with an optional word before the key (Token mcp/linear).
	headerNamePattern   = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$"
	headerSecretPattern = `^([A-Za-z][A-Za-z0-9_-]{0,31} )?(` + names.Pattern + `/)?` + names.Pattern + `$`
)

// propertyNames constrains an object's member names.
func propertyNames(pattern string) mcpgo.PropertyOption {
	return func(schema map[string]any) { schema["propertyNames"] = map[string]any{"pattern": pattern} }
}

const adminInstructions = `Ringlet's controls: profiles (an agent bound to a provider, model and workspace), their sessions, pre-tool-use hooks that can refuse tool calls, the tamper-evident audit log, token usage, budgets and rate limits. Reads are safe; profiles_delete, sessions_revoke, sessions_kill, hooks_remove, mcp_servers_set, mcp_servers_approve, mcp_tools_set, mcp_tools_default, budgets_set, budgets_clear, ratelimits_set and ratelimits_clear change things at once and are audited. No tool returns a key.`

const sessionInstructions = `Ringlet session tools: read-only facts about this session (its profile, expiry, audit records and token usage), plus the tools of the profile's MCP servers, named <server>__<tool> (or, when search_tools is offered, found with it and run with call_tool), and their resources (<server>+<uri>) and prompts (<server>__<prompt>). Every call, read and get is checked by the profile's hooks first; a refused one returns an error with the reason.`

// rateProp is a rate limit's argument: a count a minute, 0 for none (the
// daemon refuses one over profile.MaxRateLimit).
func rateProp(name, what string) mcpgo.ToolOption {
	return mcpgo.WithInteger(name, mcpgo.Description(what+" 0 removes it."), mcpgo.Min(0))
}

func timeProp(name, what string) mcpgo.ToolOption {
	return mcpgo.WithString(name, mcpgo.Description(what+": YYYY-MM-DD, RFC 3339 (2026-05-01T12:00:00Z) or a duration ago (30m, 24h, 7d)."), mcpgo.Pattern(timePattern))
}

func annotate(title string, readOnly, destructive, idempotent bool) mcpgo.ToolOption {
	return mcpgo.WithToolAnnotation(mcpgo.ToolAnnotation{
		Title:           title,
		ReadOnlyHint:    mcpgo.ToBoolPtr(readOnly),
		DestructiveHint: mcpgo.ToBoolPtr(destructive),
		IdempotentHint:  mcpgo.ToBoolPtr(idempotent),
		OpenWorldHint:   mcpgo.ToBoolPtr(false),
	})
}

func strict() mcpgo.ToolOption { return mcpgo.WithSchemaAdditionalProperties(false) }

// adminTools are the admin audience's tools.
func adminTools() []server.ServerTool {
	kinds := mcpgo.Items(map[string]any{"type": "string", "enum": audit.Kinds})
	return []server.ServerTool{
		{Tool: mcpgo.NewTool("profiles_list",
			mcpgo.WithDescription("List every Ringlet profile: its agent, provider, model, workspace, HOME, whether its provider key is stored (never the key) and how many sessions it has open."),
			annotate("List profiles", true, false, true), strict()),
			Handler: apiTool(func(a struct{}) (string, string, any) { return "GET", "/api/profiles", nil })},
		{Tool: mcpgo.NewTool("profiles_inspect",
			mcpgo.WithDescription("Show one profile by alias: agent, provider, model, workspace, HOME, key status (stored or missing, never the key) and open sessions."),
			mcpgo.WithString("alias", mcpgo.Required(), mcpgo.Description("The profile's alias, e.g. work."), mcpgo.Pattern(aliasPattern)),
			annotate("Inspect a profile", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Alias string `json:"alias"`
			}) (string, string, any) {
				return "GET", "/api/profiles/" + url.PathEscape(a.Alias), nil
			})},
		{Tool: mcpgo.NewTool("profiles_create",
			mcpgo.WithDescription("Create a profile that binds an agent (claude, codex, opencode, generic) to a provider and model. It does not store the provider key: the user stores it with 'ringlet keychain set PROVIDER ALIAS'. Fails if the alias exists."),
			mcpgo.WithString("alias", mcpgo.Required(), mcpgo.Description("New profile alias: 1 to 64 lower-case letters, digits, '.', '_' or '-'."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("agent", mcpgo.Required(), mcpgo.Description("Agent id from the catalog, e.g. claude, codex, opencode or generic."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("provider", mcpgo.Required(), mcpgo.Description("Provider id from the catalog, e.g. anthropic, openai or openrouter."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("model", mcpgo.Description("Model name passed to the agent, e.g. claude-sonnet-4-5."), mcpgo.MaxLength(200)),
			mcpgo.WithString("workspace", mcpgo.Description("Absolute path of the project directory the agent works in."), mcpgo.MaxLength(4096)),
			mcpgo.WithString("endpoint", mcpgo.Description("Named endpoint of the provider, when it has several."), mcpgo.Pattern(aliasPattern)),
			annotate("Create a profile", false, false, false), strict()),
			Handler: apiTool(func(a struct {
				Alias     string `json:"alias"`
				Agent     string `json:"agent"`
				Provider  string `json:"provider"`
				Model     string `json:"model,omitempty"`
				Workspace string `json:"workspace,omitempty"`
				Endpoint  string `json:"endpoint,omitempty"`
			}) (string, string, any) {
				return "POST", "/api/profiles", a
			})},
		{Tool: mcpgo.NewTool("profiles_delete",
			mcpgo.WithDescription("Delete a profile: its open sessions are revoked at once and its hooks removed. With purge_key, its provider key is deleted from the credential store too. Cannot be undone."),
			mcpgo.WithString("alias", mcpgo.Required(), mcpgo.Description("Alias of the profile to delete."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithBoolean("purge_key", mcpgo.Description("Also delete the profile's provider key. Default false."), mcpgo.DefaultBool(false)),
			annotate("Delete a profile", false, true, false), strict()),
			Handler: apiTool(func(a struct {
				Alias    string `json:"alias"`
				PurgeKey bool   `json:"purge_key"`
			}) (string, string, any) {
				p := "/api/profiles/" + url.PathEscape(a.Alias)
				if a.PurgeKey {
					p += "?purge_key=true"
				}
				return "DELETE", p, nil
			})},
		{Tool: mcpgo.NewTool("sessions_list",
			mcpgo.WithDescription("List live sessions (one per agent run): id, profile, provider, agent, creation and expiry times, request count. Never a token."),
			mcpgo.WithString("profile", mcpgo.Description("Only sessions of this profile."), mcpgo.Pattern(aliasPattern)),
			annotate("List sessions", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
			}) (string, string, any) {
				return "GET", "/api/sessions" + query("profile", a.Profile), nil
			})},
		{Tool: mcpgo.NewTool("sessions_revoke",
			mcpgo.WithDescription("Revoke a session at once: its token stops working and its open streams are cut. The agent using it loses provider access until a new session starts."),
			mcpgo.WithString("id", mcpgo.Required(), mcpgo.Description("Session id, e.g. s_0123456789abcdef (sessions_list shows them)."), mcpgo.Pattern(sessionPattern)),
			annotate("Revoke a session", false, true, true), strict()),
			Handler: apiTool(func(a struct {
				ID string `json:"id"`
			}) (string, string, any) {
				return "DELETE", "/api/sessions/" + url.PathEscape(a.ID), nil
			})},
		{Tool: mcpgo.NewTool("sessions_kill",
			mcpgo.WithDescription("The kill switch: kill a session (id), every session of a profile, or all of them (all: true). Each session's token is refused, its provider streams and MCP calls are cut, its sandbox's whole process tree and remote terminal are killed, and its profile's running stdio MCP servers are killed; one session.killed audit record says it was this tool, and why."),
			mcpgo.WithString("id", mcpgo.Description("One session's id, e.g. s_0123456789abcdef (sessions_list shows them)."), mcpgo.Pattern(sessionPattern)),
			mcpgo.WithString("profile", mcpgo.Description("Kill every live session of this profile."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithBoolean("all", mcpgo.Description("Kill every live session. Default false."), mcpgo.DefaultBool(false)),
			mcpgo.WithString("reason", mcpgo.Description("Why, for the audit log: one line."), mcpgo.MaxLength(500), mcpgo.Pattern(`^[^\r\n]*$`)),
			annotate("Kill sessions", false, true, true), strict()),
			Handler: apiTool(func(a struct {
				ID      string `json:"id"`
				Profile string `json:"profile,omitempty"`
				All     bool   `json:"all,omitempty"`
				Reason  string `json:"reason,omitempty"`
			}) (string, string, any) {
				if a.ID != "" {
					return "POST", "/api/sessions/" + url.PathEscape(a.ID) + "/kill", struct {
						Profile string `json:"profile,omitempty"`
						All     bool   `json:"all,omitempty"`
						Reason  string `json:"reason,omitempty"`
					}{a.Profile, a.All, a.Reason}
				}
				return "POST", "/api/sessions/kill", struct {
					Profile string `json:"profile,omitempty"`
					All     bool   `json:"all,omitempty"`
					Reason  string `json:"reason,omitempty"`
				}{a.Profile, a.All, a.Reason}
			})},
		{Tool: mcpgo.NewTool("audit_query",
			mcpgo.WithDescription("Query the audit log, newest first: every daemon start, session, tool call, hook decision, provider request and configuration change. Pass next_cursor from a previous answer as cursor for the next page."),
			timeProp("since", "Only records at or after this time"),
			timeProp("until", "Only records before this time"),
			mcpgo.WithArray("kind", mcpgo.Description("Only these kinds of record."), kinds),
			mcpgo.WithString("profile", mcpgo.Description("Only records of this profile."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("session", mcpgo.Description("Only records of this session."), mcpgo.Pattern(sessionPattern)),
			mcpgo.WithString("decision", mcpgo.Description("Only records with this decision."), mcpgo.Enum(audit.Allow, audit.Deny, audit.Error)),
			mcpgo.WithInteger("limit", mcpgo.Description("Records per page, default 100."), mcpgo.Min(1), mcpgo.Max(audit.MaxLimit)),
			mcpgo.WithString("cursor", mcpgo.Description("next_cursor of the previous page."), mcpgo.Pattern(cursorPattern)),
			annotate("Query the audit log", true, false, true), strict()),
			Handler: apiTool(func(a auditArgs) (string, string, any) { return "GET", "/api/audit" + a.encode(), nil })},
		{Tool: mcpgo.NewTool("audit_trace",
			mcpgo.WithDescription("Show the causal tree of one agent turn: the provider request (model, tokens, cost), the tool calls its answer asked for (name, input digest), the hook decisions and tool calls made for each, what the sandbox did meanwhile, and the next request carrying the results. Name it by trace id or by the number of one of its records."),
			mcpgo.WithString("trace", mcpgo.Required(), mcpgo.Description("A trace id (32 hex digits) or a record number."), mcpgo.Pattern(traceRefPattern)),
			annotate("Trace an agent turn", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Trace string `json:"trace"`
			}) (string, string, any) {
				return "GET", "/api/audit/traces/" + url.PathEscape(a.Trace), nil
			})},
		{Tool: mcpgo.NewTool("audit_verify",
			mcpgo.WithDescription("Verify the audit log's hash chain and anchor: reports whether any record was edited, removed, reordered or cut off, and the first bad record if so."),
			annotate("Verify the audit log", true, false, true), strict()),
			Handler: apiTool(func(a struct{}) (string, string, any) { return "GET", "/api/audit/verify", nil })},
		{Tool: mcpgo.NewTool("usage_summary",
			mcpgo.WithDescription("Sum provider token usage and cost from the audit log, grouped by day, model or profile."),
			timeProp("since", "Only usage at or after this time"),
			timeProp("until", "Only usage before this time"),
			mcpgo.WithString("profile", mcpgo.Description("Only usage of this profile."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("by", mcpgo.Description("Grouping, default day."), mcpgo.Enum("day", "model", "profile")),
			annotate("Summarise usage", true, false, true), strict()),
			Handler: apiTool(func(a usageArgs) (string, string, any) { return "GET", "/api/usage" + a.encode(), nil })},
		{Tool: mcpgo.NewTool("budgets_show",
			mcpgo.WithDescription("Show a profile's budgets (caps per session, and per day, week and month in UTC) and the state of each: spent, reserved by requests in flight, remaining."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			annotate("Show budgets", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
			}) (string, string, any) {
				return "GET", "/api/budgets/" + url.PathEscape(a.Profile), nil
			})},
		{Tool: mcpgo.NewTool("budgets_set",
			mcpgo.WithDescription("Set the caps of one period of a profile's budgets (replacing that period's caps; the other periods stay), and what happens when a budget is exhausted. A request that would pass a cap is refused before it reaches the provider. A USD cap needs a price for the profile's model. Omit every cap to change only on_exhaust or stream."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("period", mcpgo.Description("What the caps cover: each session of the profile, or the profile per day, week or month (UTC)."), mcpgo.Enum("session", "day", "week", "month")),
			mcpgo.WithNumber("usd", mcpgo.Description("USD cap."), mcpgo.Min(0)),
			mcpgo.WithInteger("input_tokens", mcpgo.Description("Input token cap (cache reads and writes included)."), mcpgo.Min(0)),
			mcpgo.WithInteger("output_tokens", mcpgo.Description("Output token cap."), mcpgo.Min(0)),
			mcpgo.WithInteger("requests", mcpgo.Description("Provider request cap."), mcpgo.Min(0)),
			mcpgo.WithInteger("tool_calls", mcpgo.Description("Cap on tool calls: the agent's own (asked about by its Ringlet hook) and those through Ringlet's MCP gateway, each counted once."), mcpgo.Min(0)),
			mcpgo.WithString("runtime", mcpgo.Description("Wall-clock cap of a session, e.g. 2h or 90m (period session only)."), mcpgo.Pattern(`^([0-9]{1,6}(h|m|s))+$`)),
			mcpgo.WithString("on_exhaust", mcpgo.Description("kill (the default: the session ends) or refuse (its requests are refused)."), mcpgo.Enum("kill", "refuse")),
			mcpgo.WithString("stream", mcpgo.Description("A streamed answer that passes a cap: cut (the default) or finish."), mcpgo.Enum("cut", "finish")),
			annotate("Set a budget", false, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile      string  `json:"profile"`
				Period       string  `json:"period"`
				USD          float64 `json:"usd,omitempty"`
				InputTokens  int64   `json:"input_tokens,omitempty"`
				OutputTokens int64   `json:"output_tokens,omitempty"`
				Requests     int64   `json:"requests,omitempty"`
				ToolCalls    int64   `json:"tool_calls,omitempty"`
				Runtime      string  `json:"runtime,omitempty"`
				OnExhaust    string  `json:"on_exhaust,omitempty"`
				Stream       string  `json:"stream,omitempty"`
			}) (string, string, any) {
				body := map[string]any{"on_exhaust": a.OnExhaust, "stream": a.Stream}
				if a.Period != "" {
					limits := map[string]any{"usd": a.USD, "input_tokens": a.InputTokens, "output_tokens": a.OutputTokens,
						"requests": a.Requests, "tool_calls": a.ToolCalls}
					if a.Runtime != "" {
						limits["runtime"] = a.Runtime
					}
					body["limits"] = map[string]any{a.Period: limits}
				}
				return "PUT", "/api/budgets/" + url.PathEscape(a.Profile), body
			})},
		{Tool: mcpgo.NewTool("budgets_clear",
			mcpgo.WithDescription("Remove a profile's budgets: one period's, or all of them."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("period", mcpgo.Description("Only this period's budget; all when omitted."), mcpgo.Enum("session", "day", "week", "month")),
			annotate("Clear budgets", false, true, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
				Period  string `json:"period"`
			}) (string, string, any) {
				return "DELETE", "/api/budgets/" + url.PathEscape(a.Profile) + query("period", a.Period), nil
			})},
		{Tool: mcpgo.NewTool("ratelimits_show",
			mcpgo.WithDescription("Show a profile's rate limits: provider requests, tokens and tool calls a minute, per session and for all its sessions together (0 or absent: none)."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			annotate("Show rate limits", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
			}) (string, string, any) {
				return "GET", "/api/profiles/" + url.PathEscape(a.Profile) + "/ratelimits", nil
			})},
		{Tool: mcpgo.NewTool("ratelimits_set",
			mcpgo.WithDescription("Set some of a profile's rate limits, a minute each (0 removes one; those omitted stay). A request or tool call over a limit is refused with a retry time (429 and Retry-After for provider requests) until its bucket refills. Applies to live sessions from their next request."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			rateProp("session_requests", "Provider requests a minute, per session."),
			rateProp("session_tokens", "Input and output tokens a minute, per session."),
			rateProp("session_tool_calls", "Tool calls a minute, per session (the agent's own and through Ringlet's MCP gateway)."),
			rateProp("profile_requests", "Provider requests a minute, all sessions of the profile together."),
			rateProp("profile_tokens", "Input and output tokens a minute, all sessions together."),
			rateProp("profile_tool_calls", "Tool calls a minute, all sessions together."),
			annotate("Set rate limits", false, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile          string `json:"profile"`
				SessionRequests  *int64 `json:"session_requests,omitempty"`
				SessionTokens    *int64 `json:"session_tokens,omitempty"`
				SessionToolCalls *int64 `json:"session_tool_calls,omitempty"`
				ProfileRequests  *int64 `json:"profile_requests,omitempty"`
				ProfileTokens    *int64 `json:"profile_tokens,omitempty"`
				ProfileToolCalls *int64 `json:"profile_tool_calls,omitempty"`
			}) (string, string, any) {
				body := map[string]*int64{"session_requests": a.SessionRequests, "session_tokens": a.SessionTokens, "session_tool_calls": a.SessionToolCalls,
					"profile_requests": a.ProfileRequests, "profile_tokens": a.ProfileTokens, "profile_tool_calls": a.ProfileToolCalls}
				for k, v := range body {
					if v == nil {
						delete(body, k)
					}
				}
				return "PATCH", "/api/profiles/" + url.PathEscape(a.Profile) + "/ratelimits", body
			})},
		{Tool: mcpgo.NewTool("ratelimits_clear",
			mcpgo.WithDescription("Remove every rate limit of a profile."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			annotate("Clear rate limits", false, true, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
			}) (string, string, any) {
				return "DELETE", "/api/profiles/" + url.PathEscape(a.Profile) + "/ratelimits", nil
			})},
		{Tool: mcpgo.NewTool("hooks_list",
			mcpgo.WithDescription("List a profile's hooks in the order they run: id, event, tool-name match, timeout and shell command."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			annotate("List hooks", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
			}) (string, string, any) {
				return "GET", "/api/hooks" + query("profile", a.Profile), nil
			})},
		{Tool: mcpgo.NewTool("hooks_add",
			mcpgo.WithDescription("Add a shell hook to a profile. A pre-tool-use hook runs before every matching tool call of the profile's agents (their own tools and MCP tools) as /bin/sh -c with the call in RINGLET_TOOL_NAME and RINGLET_TOOL_INPUT; exit 0 allows, anything else refuses the call with the first line of stderr as the reason. Returns the new hook's id."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("event", mcpgo.Required(), mcpgo.Description("When the hook runs."), mcpgo.Enum("pre-tool-use", "post-tool-use")),
			mcpgo.WithString("shell", mcpgo.Required(), mcpgo.Description(`The command, e.g. echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf".`), mcpgo.MinLength(1), mcpgo.MaxLength(16384)),
			mcpgo.WithString("match", mcpgo.Description("Regular expression on the tool name; the hook runs only for tools it matches. Default: every tool."), mcpgo.MaxLength(1024)),
			mcpgo.WithString("timeout", mcpgo.Description("Refuse the call if the hook runs longer, 100ms to 5m. Default 10s."), mcpgo.Pattern(durationPattern)),
			annotate("Add a hook", false, false, false), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
				Event   string `json:"event"`
				Shell   string `json:"shell"`
				Match   string `json:"match,omitempty"`
				Timeout string `json:"timeout,omitempty"`
			}) (string, string, any) {
				return "POST", "/api/hooks", a
			})},
		{Tool: mcpgo.NewTool("hooks_remove",
			mcpgo.WithDescription("Remove one hook from a profile; the tool calls it guarded are no longer checked by it."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("id", mcpgo.Required(), mcpgo.Description("Hook id, e.g. h_1a2b3c4d (hooks_list shows them)."), mcpgo.Pattern(hookPattern)),
			annotate("Remove a hook", false, true, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
				ID      string `json:"id"`
			}) (string, string, any) {
				return "DELETE", "/api/hooks/" + url.PathEscape(a.Profile) + "/" + url.PathEscape(a.ID), nil
			})},
		{Tool: mcpgo.NewTool("mcp_servers_list",
			mcpgo.WithDescription("List a profile's upstream MCP servers: state, command or URL, sandbox, the names of their variables and the stored keys their secrets come from (never a value), and their tools."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			annotate("List MCP servers", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
			}) (string, string, any) {
				return "GET", "/api/mcp/servers" + query("profile", a.Profile), nil
			})},
		{Tool: mcpgo.NewTool("mcp_servers_set",
			mcpgo.WithDescription("Change the environment of a profile's stdio MCP server: plain variables (env, unset_env) and secrets, each a key already in Ringlet's credential store named provider/alias (secrets, unset_secrets); or the headers the gateway sends a profile's HTTP MCP server, plain (headers, unset_headers) and keys from the store (header_secrets, unset_header_secrets). Unsets apply first. A running server restarts with the new environment or headers. Returns the server as stored, never a secret's value."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("name", mcpgo.Required(), mcpgo.Description("The server's name (mcp_servers_list shows them)."), mcpgo.Pattern(serverPattern)),
			mcpgo.WithObject("env", mcpgo.Description("Plain variables to set, NAME: value. Not for secrets."),
				mcpgo.AdditionalProperties(map[string]any{"type": "string", "maxLength": 32768}), propertyNames(envNamePattern)),
			mcpgo.WithArray("unset_env", mcpgo.Description("Plain variables to remove."), mcpgo.Items(map[string]any{"type": "string", "pattern": envNamePattern})),
			mcpgo.WithObject("secrets", mcpgo.Description("Secrets to give, NAME: provider/alias of a stored key (a bare alias is mcp/alias)."),
				mcpgo.AdditionalProperties(map[string]any{"type": "string", "pattern": secretRefPattern}), propertyNames(envNamePattern)),
			mcpgo.WithArray("unset_secrets", mcpgo.Description("Secrets to stop giving."), mcpgo.Items(map[string]any{"type": "string", "pattern": envNamePattern})),
			mcpgo.WithObject("headers", mcpgo.Description("For an HTTP server: plain headers to send, Name: value. Not for keys."),
				mcpgo.AdditionalProperties(map[string]any{"type": "string", "maxLength": 8192}), propertyNames(headerNamePattern)),
			mcpgo.WithArray("unset_headers", mcpgo.Description("Plain headers to stop sending."), mcpgo.Items(map[string]any{"type": "string", "pattern": headerNamePattern})),
			mcpgo.WithObject("header_secrets", mcpgo.Description("For an HTTP server: headers whose value is a stored key, Name: provider/alias, or Name: SCHEME provider/alias to send SCHEME, a space and the key (e.g. X-API-Key: mcp/linear, Authorization: Token mcp/svc)."),
				mcpgo.AdditionalProperties(map[string]any{"type": "string", "pattern": headerSecretPattern}), propertyNames(headerNamePattern)),
			mcpgo.WithArray("unset_header_secrets", mcpgo.Description("Secret headers to stop sending."), mcpgo.Items(map[string]any{"type": "string", "pattern": headerNamePattern})),
			annotate("Change an MCP server's environment", false, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile            string            `json:"profile"`
				Name               string            `json:"name"`
				Env                map[string]string `json:"env,omitempty"`
				UnsetEnv           []string          `json:"unset_env,omitempty"`
				Secrets            map[string]string `json:"secrets,omitempty"`
				UnsetSecrets       []string          `json:"unset_secrets,omitempty"`
				Headers            map[string]string `json:"headers,omitempty"`
				UnsetHeaders       []string          `json:"unset_headers,omitempty"`
				HeaderSecrets      map[string]string `json:"header_secrets,omitempty"`
				UnsetHeaderSecrets []string          `json:"unset_header_secrets,omitempty"`
			}) (string, string, any) {
				body := mcpserver.EnvChange{Env: a.Env, UnsetEnv: a.UnsetEnv, Secrets: a.Secrets, UnsetSecrets: a.UnsetSecrets,
					Headers: a.Headers, UnsetHeaders: a.UnsetHeaders, HeaderSecrets: a.HeaderSecrets, UnsetHeaderSecrets: a.UnsetHeaderSecrets}
				return "PATCH", "/api/mcp/servers/" + url.PathEscape(a.Profile) + "/" + url.PathEscape(a.Name), body
			})},
		{Tool: mcpgo.NewTool("mcp_tools_list",
			mcpgo.WithDescription("List the tools of a profile's MCP server as its sessions see them: each tool's name, the first line of its description, whether it is enabled or disabled and why (the profile's default, or a rule), and the server's rules. Starts the server if it has not run."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("name", mcpgo.Required(), mcpgo.Description("The server's name (mcp_servers_list shows them)."), mcpgo.Pattern(serverPattern)),
			annotate("List an MCP server's tools", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
				Name    string `json:"name"`
			}) (string, string, any) {
				return "GET", "/api/mcp/servers/" + url.PathEscape(a.Profile) + "/" + url.PathEscape(a.Name) + "/tools", nil
			})},
		{Tool: mcpgo.NewTool("mcp_tools_set",
			mcpgo.WithDescription("Enable or disable tools of a profile's MCP server by name or glob ('write_*'), its prompts by name or glob, and its resources and resource templates by URI, URI template or glob ('file:///docs/*', where * also matches '/'); and turn all its resources or prompts on or off. A disabled item is not listed to the profile's sessions and a call, read or get of it is refused. Disables apply first, then enables; the last rule that matches an item decides, else (prompts, resources) the server's switch, else the profile's default (mcp_tools_default). reset removes the server's rules first. Returns the tools, prompts and resources with their state, and the patterns that match nothing current (stored all the same)."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("name", mcpgo.Required(), mcpgo.Description("The server's name (mcp_servers_list shows them)."), mcpgo.Pattern(serverPattern)),
			mcpgo.WithArray("enable", mcpgo.Description("Tool names or globs to enable."), mcpgo.Items(map[string]any{"type": "string", "minLength": 1, "maxLength": 128})),
			mcpgo.WithArray("disable", mcpgo.Description("Tool names or globs to disable."), mcpgo.Items(map[string]any{"type": "string", "minLength": 1, "maxLength": 128})),
			mcpgo.WithArray("enable_prompts", mcpgo.Description("Prompt names or globs to enable."), mcpgo.Items(map[string]any{"type": "string", "minLength": 1, "maxLength": 128})),
			mcpgo.WithArray("disable_prompts", mcpgo.Description("Prompt names or globs to disable."), mcpgo.Items(map[string]any{"type": "string", "minLength": 1, "maxLength": 128})),
			mcpgo.WithArray("enable_resources", mcpgo.Description("Resource URIs, URI templates or globs to enable."), mcpgo.Items(map[string]any{"type": "string", "minLength": 1, "maxLength": 1024})),
			mcpgo.WithArray("disable_resources", mcpgo.Description("Resource URIs, URI templates or globs to disable."), mcpgo.Items(map[string]any{"type": "string", "minLength": 1, "maxLength": 1024})),
			mcpgo.WithBoolean("reset", mcpgo.Description("Remove the server's tool, prompt and resource rules first: each follows the server's switches and the profile's default.")),
			mcpgo.WithString("resources", mcpgo.Description("on or off: offer or hide all of the server's resources and resource templates; default: follow the profile's default (none hides them)."), mcpgo.Enum(mcpserver.SwitchOn, mcpserver.SwitchOff, mcpserver.SwitchDefault)),
			mcpgo.WithString("prompts", mcpgo.Description("on or off: offer or hide all of the server's prompts; default: follow the profile's default (none hides them)."), mcpgo.Enum(mcpserver.SwitchOn, mcpserver.SwitchOff, mcpserver.SwitchDefault)),
			annotate("Enable or disable MCP tools", false, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
				Name    string `json:"name"`
				mcpserver.ToolChange
			}) (string, string, any) {
				body := a.ToolChange
				return "PATCH", "/api/mcp/servers/" + url.PathEscape(a.Profile) + "/" + url.PathEscape(a.Name) + "/tools", body
			})},
		{Tool: mcpgo.NewTool("mcp_tools_default",
			mcpgo.WithDescription("Set a profile's default for the tools of its MCP servers that no rule names: all (served) or none (disabled until enabled with mcp_tools_set); and whether its sessions get search_tools and call_tool instead of every tool (search on or off). Give default, search or both. Its sessions see the change at once."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("default", mcpgo.Description("all or none."), mcpgo.Enum(mcpserver.ToolsAll, mcpserver.ToolsNone)),
			mcpgo.WithString("search", mcpgo.Description("on: sessions find the servers' tools with search_tools and run them with call_tool; off (the default): every tool is listed."), mcpgo.Enum("on", "off")),
			annotate("Set the MCP tools default", false, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile string `json:"profile"`
				Default string `json:"default"`
				Search  string `json:"search"`
			}) (string, string, any) {
				body := map[string]string{}
				for k, v := range map[string]string{"default": a.Default, "search": a.Search} {
					if v != "" {
						body[k] = v
					}
				}
				return "PUT", "/api/mcp/tools-default/" + url.PathEscape(a.Profile), body
			})},
		{Tool: mcpgo.NewTool("mcp_servers_approve",
			mcpgo.WithDescription("Show how a profile's MCP server differs from what was approved (its program, and each tool added, removed, renamed-looking or changed, with a diff), and approve it. Tools touched by a change are hidden from the profile's sessions until approved. With dry_run, only shows; pass the answer's diff.observed as observed to approve exactly what was shown. tools, prompts and resources approve only those changes (a changed program is approved whole). Prompts, resources and resource templates are pinned as tools are (not what a resource holds). Starts the server if it has not run."),
			mcpgo.WithString("profile", mcpgo.Required(), mcpgo.Description("Profile alias."), mcpgo.Pattern(aliasPattern)),
			mcpgo.WithString("name", mcpgo.Required(), mcpgo.Description("The server's name (mcp_servers_list shows them)."), mcpgo.Pattern(serverPattern)),
			mcpgo.WithBoolean("dry_run", mcpgo.Description("Only show the diff. Default false.")),
			mcpgo.WithArray("tools", mcpgo.Description("Approve only these tools' changes; default: all of them."), mcpgo.Items(map[string]any{"type": "string", "pattern": toolNamePattern})),
			mcpgo.WithArray("prompts", mcpgo.Description("Approve only these prompts' changes (by the server's own name)."), mcpgo.Items(map[string]any{"type": "string", "pattern": toolNamePattern})),
			mcpgo.WithArray("resources", mcpgo.Description("Approve only these resources' or resource templates' changes (by the server's own URI or URI template)."), mcpgo.Items(map[string]any{"type": "string", "minLength": 1, "maxLength": maxURI})),
			mcpgo.WithString("observed", mcpgo.Description("diff.observed of a dry run: refuse if the server changed since."), mcpgo.Pattern(`^sha256:[0-9a-f]{64}$`)),
			annotate("Approve an MCP server's changes", false, false, true), strict()),
			Handler: apiTool(func(a struct {
				Profile   string   `json:"profile"`
				Name      string   `json:"name"`
				DryRun    bool     `json:"dry_run,omitempty"`
				Tools     []string `json:"tools,omitempty"`
				Prompts   []string `json:"prompts,omitempty"`
				Resources []string `json:"resources,omitempty"`
				Observed  string   `json:"observed,omitempty"`
			}) (string, string, any) {
				// api.MCPApproveRequest, which this package does not import.
				body := struct {
					Tools     []string `json:"tools,omitempty"`
					Prompts   []string `json:"prompts,omitempty"`
					Resources []string `json:"resources,omitempty"`
					DryRun    bool     `json:"dry_run,omitempty"`
					Observed  string   `json:"observed,omitempty"`
				}{a.Tools, a.Prompts, a.Resources, a.DryRun, a.Observed}
				return "POST", "/api/mcp/servers/" + url.PathEscape(a.Profile) + "/" + url.PathEscape(a.Name) + "/approve", body
			})},
		{Tool: mcpgo.NewTool("keychain_list",
			mcpgo.WithDescription("List the provider keys Ringlet stores, by name only (provider/alias, backend, status, dates). No tool ever returns a key."),
			annotate("List stored keys", true, false, true), strict()),
			Handler: apiTool(func(a struct{}) (string, string, any) { return "GET", "/api/keychain", nil })},
	}
}

// sessionTools are the session audience's own tools; they see only the
// caller's session.
func sessionTools() []server.ServerTool {
	kinds := mcpgo.Items(map[string]any{"type": "string", "enum": audit.Kinds})
	return []server.ServerTool{
		{Tool: mcpgo.NewTool("session_info",
			mcpgo.WithDescription("Show this session: its id, profile, provider, agent, creation and expiry times and request count."),
			annotate("This session", true, false, true), strict()),
			Handler: apiTool(func(a struct{}) (string, string, any) { return "GET", "/info", nil })},
		{Tool: mcpgo.NewTool("session_audit",
			mcpgo.WithDescription("Read this session's own audit records, newest first: its tool calls, hook decisions and provider requests. Pass next_cursor from a previous answer as cursor for the next page."),
			timeProp("since", "Only records at or after this time"),
			timeProp("until", "Only records before this time"),
			mcpgo.WithArray("kind", mcpgo.Description("Only these kinds of record."), kinds),
			mcpgo.WithString("decision", mcpgo.Description("Only records with this decision."), mcpgo.Enum(audit.Allow, audit.Deny, audit.Error)),
			mcpgo.WithInteger("limit", mcpgo.Description("Records per page, default 100."), mcpgo.Min(1), mcpgo.Max(audit.MaxLimit)),
			mcpgo.WithString("cursor", mcpgo.Description("next_cursor of the previous page."), mcpgo.Pattern(cursorPattern)),
			annotate("This session's audit records", true, false, true), strict()),
			Handler: apiTool(func(a sessionAuditArgs) (string, string, any) {
				return "GET", "/audit" + auditArgs{Since: a.Since, Until: a.Until, Kind: a.Kind, Decision: a.Decision, Limit: a.Limit, Cursor: a.Cursor}.encode(), nil
			})},
		{Tool: mcpgo.NewTool("session_trace",
			mcpgo.WithDescription("Show the causal tree of one of this session's turns: the provider request, the tool calls its answer asked for, the hook decisions and tool calls for each, and the next request. Only this session's records are shown."),
			mcpgo.WithString("trace", mcpgo.Required(), mcpgo.Description("A trace id (32 hex digits, a record's trace_id) or the number of one of this session's records."), mcpgo.Pattern(traceRefPattern)),
			annotate("Trace a turn of this session", true, false, true), strict()),
			Handler: apiTool(func(a struct {
				Trace string `json:"trace"`
			}) (string, string, any) {
				return "GET", "/audit/traces/" + url.PathEscape(a.Trace), nil
			})},
		{Tool: mcpgo.NewTool("session_usage",
			mcpgo.WithDescription("Sum this session's provider token usage and cost, grouped by day or model."),
			timeProp("since", "Only usage at or after this time"),
			timeProp("until", "Only usage before this time"),
			mcpgo.WithString("by", mcpgo.Description("Grouping, default day."), mcpgo.Enum("day", "model")),
			annotate("This session's usage", true, false, true), strict()),
			Handler: apiTool(func(a sessionUsageArgs) (string, string, any) {
				return "GET", "/usage" + usageArgs{Since: a.Since, Until: a.Until, By: a.By}.encode(), nil
			})},
	}
}

// traceRefPattern is a trace id or a record number.
const traceRefPattern = `^([0-9a-f]{32}|[1-9][0-9]{0,18})$`

type auditArgs struct {
	Since    string   `json:"since"`
	Until    string   `json:"until"`
	Kind     []string `json:"kind"`
	Profile  string   `json:"profile"`
	Session  string   `json:"session"`
	Decision string   `json:"decision"`
	Limit    int      `json:"limit"`
	Cursor   string   `json:"cursor"`
}

func (a auditArgs) encode() string {
	q := url.Values{}
	set(q, "since", a.Since)
	set(q, "until", a.Until)
	if len(a.Kind) > 0 {
		q.Set("kind", strings.Join(a.Kind, ","))
	}
	set(q, "profile", a.Profile)
	set(q, "session", a.Session)
	set(q, "decision", a.Decision)
	if a.Limit > 0 {
		q.Set("limit", strconv.Itoa(a.Limit))
	}
	set(q, "cursor", a.Cursor)
	return encode(q)
}

// The session tools' arguments have no profile or session: the session
// is the caller's, and an argument naming another is refused as unknown.
type sessionAuditArgs struct {
	Since    string   `json:"since"`
	Until    string   `json:"until"`
	Kind     []string `json:"kind"`
	Decision string   `json:"decision"`
	Limit    int      `json:"limit"`
	Cursor   string   `json:"cursor"`
}

type sessionUsageArgs struct {
	Since string `json:"since"`
	Until string `json:"until"`
	By    string `json:"by"`
}

type usageArgs struct {
	Since   string `json:"since"`
	Until   string `json:"until"`
	Profile string `json:"profile"`
	By      string `json:"by"`
}

func (a usageArgs) encode() string {
	q := url.Values{}
	set(q, "since", a.Since)
	set(q, "until", a.Until)
	set(q, "profile", a.Profile)
	set(q, "by", a.By)
	return encode(q)
}

func set(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func query(k, v string) string {
	q := url.Values{}
	set(q, k, v)
	return encode(q)
}

func encode(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// apiTool makes a tool handler from a function that maps the tool's
// arguments (decoded strictly into A) to one API request.
func apiTool[A any](route func(A) (method, target string, body any)) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		c := CallerFrom(ctx)
		if c == nil || c.API == nil {
			return mcpgo.NewToolResultError("no authenticated caller"), nil
		}
		var a A
		raw, _ := req.GetRawArguments().(json.RawMessage)
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			raw = json.RawMessage("{}")
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return mcpgo.NewToolResultError("invalid arguments: " + err.Error()), nil
		}
		method, target, body := route(a)
		return callAPI(ctx, c.API, method, target, body), nil
	}
}

// callAPI runs one request through api in process and turns the answer
// into a tool result: the JSON body on success, the error message with
// isError on failure.
func callAPI(ctx context.Context, api http.Handler, method, target string, body any) *mcpgo.CallToolResult {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return mcpgo.NewToolResultError("could not encode the request: " + err.Error())
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return mcpgo.NewToolResultError("invalid request: " + err.Error())
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := newRecorder()
	api.ServeHTTP(rec, req)
	out := bytes.TrimSpace(rec.body.Bytes())
	if rec.status >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error.Message != "" {
			return mcpgo.NewToolResultError(fmt.Sprintf("%s (%s, HTTP %d)", e.Error.Message, e.Error.Code, rec.status))
		}
		return mcpgo.NewToolResultError(fmt.Sprintf("the daemon answered HTTP %d", rec.status))
	}
	res := mcpgo.NewToolResultText(string(out))
	if len(out) > 0 && out[0] == '{' && json.Valid(out) {
		res.StructuredContent = json.RawMessage(out)
	}
	return res
}

// recorder is the response writer of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}
