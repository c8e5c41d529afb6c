package gateway

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/mcp"
)

// access runs the profile's policy on a session's resources/read or
// prompts/get of an upstream MCP server, as on a tool call: the
// pre-tool-use hooks whose match takes its name (the hook input says the
// kind) before the server is asked; then, once it answered, the
// post-tool-use hooks and one record with the decision and the answer's
// size. A refusal is recorded at once. What cannot be recorded is
// refused (withheld, once the server answered). The session's budgets
// count it as a tool call, and refuse it as one.
func (g *mcpGateway) access(sess *session) func(context.Context, mcp.Access) mcp.AccessVerdict {
	return func(ctx context.Context, a mcp.Access) mcp.AccessVerdict {
		start := time.Now()
		kind := audit.KindMCPResourceRead
		if a.Kind == mcp.AccessPrompt {
			kind = audit.KindMCPPromptGet
		}
		// counted: the read passed its hooks and was charged as a tool
		// call; a restart's reload of the spend (audit.ToolCalls) reads it.
		record := func(ctx context.Context, decision, reason string, out, hooks int, counted bool) error {
			d := map[string]any{"server": a.Server, "hooks": hooks, "reason": reason, "via": "mcp"}
			if counted {
				d["counted"] = true
			}
			return g.o.Rec.record(ctx, audit.Record{Kind: kind, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID,
				Target: a.Name, Decision: decision, Duration: time.Since(start), BytesIn: int64(len(a.Input)), BytesOut: int64(out),
				Detail: audit.DetailJSON(d)})
		}
		const unrecorded = "refused: the read could not be recorded in the audit log"
		// A read reaches the server as a tool call does, and is counted
		// as one against the session's budgets (tool_calls, runtime).
		charge := func(bool) {}
		if g.o.Budgets != nil {
			done, reason, ok := g.o.Budgets.toolCall(ctx, sess, a.Name)
			if !ok {
				return mcp.AccessVerdict{Reason: reason}
			}
			charge = done
		}
		ev := hook.Event{Event: hook.PreToolUse, Profile: sess.Profile.Alias, Session: sess.ID, ToolName: a.Name, ToolInput: a.Input, Kind: a.Kind}
		d, ran, hooks, ok := g.o.Hooks.evaluate(ctx, sess, ev)
		charge(ok && d.Allow)
		if !ok {
			return mcp.AccessVerdict{Reason: d.Reason}
		}
		if !d.Allow {
			if err := record(ctx, audit.Deny, d.Reason, 0, ran, false); err != nil {
				return mcp.AccessVerdict{Reason: unrecorded}
			}
			return mcp.AccessVerdict{Reason: d.Reason}
		}
		post := slices.ContainsFunc(hooks, func(h hook.Hook) bool { return h.Event == hook.PostToolUse && h.Matches(hook.PostToolUse, a.Name) })
		return mcp.AccessVerdict{Allow: true, Done: func(ctx context.Context, out json.RawMessage, err error) mcp.Verdict {
			decision, reason, v := audit.Allow, "", mcp.Verdict{Allow: true}
			n := ran
			switch {
			case err != nil:
				decision, reason = audit.Error, err.Error()
			case post:
				after := ev
				after.Event, after.ToolOutput = hook.PostToolUse, out
				pd, pran, _, ok := g.o.Hooks.evaluate(ctx, sess, after)
				n += pran
				if !ok || !pd.Allow {
					decision, reason, v = audit.Deny, pd.Reason, mcp.Verdict{Reason: pd.Reason}
				}
			}
			if err := record(ctx, decision, reason, len(out), n, true); err != nil {
				return mcp.Verdict{Reason: unrecorded}
			}
			return v
		}}
	}
}
