package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
)

// maxReplayCalls bounds the tool calls one 'hooks test' replays; past it
// the answer says it was cut short (the newest calls are the ones kept).
const maxReplayCalls = 20_000

// maxNotReplayable bounds the calls listed as not replayable; the count
// says how many there were.
const maxNotReplayable = 1000

// noInput is why a call a new or changed hook would judge cannot be
// replayed: the audit log keeps what a call was, never its arguments.
const noInput = "the audit log keeps no tool input (only its size), so it cannot be run on this call; try it on an input of yours with 'hooks test --input FILE'"

// handleHookTest replays a profile's pre-tool-use hooks, or a candidate
// set, against the tool calls in the audit log, or runs them on one
// input in a sandbox. It changes nothing: no record is written, and a
// hook run here cannot write or reach the network.
func (hk *hooks) handleHookTest(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "profile")
	if !knownProfile(w, hk.o.Log, hk.o.Profiles, alias) {
		return
	}
	var req api.HookTest
	if !decodeJSON(w, r, &req) {
		return
	}
	current, err := hk.o.Store.List(alias)
	if err != nil {
		hookError(w, hk.o.Log, err)
		return
	}
	candidate := current
	if req.Candidate {
		candidate = req.Hooks
		for i := range candidate {
			candidate[i].Profile = alias
			if err := candidate[i].Validate(); err != nil {
				writeError(w, http.StatusBadRequest, "invalid_hook", "candidate hook "+strconv.Itoa(i+1)+": "+err.Error())
				return
			}
			if !hk.reachable(w, candidate[i], "candidate hook "+strconv.Itoa(i+1)+": ") {
				return
			}
		}
	}
	out := api.HookTestResult{Profile: alias, Flips: []api.HookFlip{}, NotReplayable: []api.HookNotReplayable{}}
	if len(req.Input) > 0 {
		res, ok := hk.runInput(w, r.Context(), alias, req, current, candidate)
		if !ok {
			return
		}
		out.Input = res
		writeJSON(w, http.StatusOK, out)
		return
	}
	var since time.Time
	if req.Since != "" {
		if since, err = audit.ParseTime(req.Since, time.Now(), time.UTC); err != nil {
			writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
			return
		}
	}
	if hk.o.AuditPath == "" {
		writeError(w, http.StatusConflict, "no_audit_log", "the daemon runs without an audit log (--no-audit-log): there is nothing to replay; use 'hooks test --input FILE'")
		return
	}
	calls, truncated, err := recordedCalls(r.Context(), hk.o.AuditPath, alias, since)
	if err != nil {
		hk.o.Log.Error("hooks test: read the audit log", "err", err)
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", "could not read the audit log: "+rootCause(err))
		return
	}
	out.Truncated = truncated
	replay(&out, calls, current, candidate)
	writeJSON(w, http.StatusOK, out)
}

// runInput runs the current hooks, and the candidate ones when asked, on
// one tool call, each hook in the replay sandbox.
func (hk *hooks) runInput(w http.ResponseWriter, ctx context.Context, alias string, req api.HookTest, current, candidate []hook.Hook) (*api.HookInputResult, bool) {
	var in struct {
		ToolName  string          `json:"tool_name"`
		ToolInput json.RawMessage `json:"tool_input"`
	}
	// Claude Code's whole PreToolUse event is welcome: only these two
	// fields are read.
	if err := json.Unmarshal(req.Input, &in); err != nil || in.ToolName == "" {
		writeError(w, http.StatusBadRequest, "bad_input", `the input must be a JSON object with "tool_name" and "tool_input", as a PreToolUse event has them`)
		return nil, false
	}
	p, err := hk.o.Profiles.Get(alias)
	if err != nil {
		profileError(w, hk.o.Log, err)
		return nil, false
	}
	env, err := hk.env(p)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "could not prepare the hooks' HOME: "+err.Error())
		return nil, false
	}
	if hk.o.Launch == nil {
		writeError(w, http.StatusServiceUnavailable, "sandbox_unavailable", "this daemon cannot build sandboxes; hooks are only run on an input inside one")
		return nil, false
	}
	if env.Sandbox, env.SandboxFiles, err = hk.o.Launch.HookReplay(env.Home); err != nil {
		writeError(w, http.StatusServiceUnavailable, "sandbox_unavailable", "hooks run on an input only in a sandbox, and none can be built here: "+err.Error())
		return nil, false
	}
	ev := hook.Event{Event: hook.PreToolUse, Profile: alias, Session: "hooks-test", ToolName: in.ToolName, ToolInput: in.ToolInput}
	decide := func(hooks []hook.Hook) hook.Decision {
		d, _ := hook.Evaluate(ctx, hooks, ev, env)
		if !d.Allow {
			d.Reason = explainDenial(alias, hook.Decision{HookID: d.HookID, ExitCode: d.ExitCode, Reason: hk.scrub(nil, alias, d.Reason)}, hk.commandOf(nil, alias, hooks, d.HookID))
		}
		return d
	}
	res := &api.HookInputResult{Tool: in.ToolName, Current: decide(current)}
	if req.Candidate {
		c := decide(candidate)
		res.Candidate = &c
		res.Flip = c.Allow != res.Current.Allow
	}
	return res, true
}

// recordedHook is a hook's decision on a recorded call.
type recordedHook struct {
	id    string
	allow bool
}

// recordedCall is a pre-tool-use tool call as the audit log has it, with
// the hook decisions recorded for it.
type recordedCall struct {
	seq      int64
	time     time.Time
	session  string
	tool     string
	allow    bool
	hooks    int // how many hooks ran, as the tool.call record says
	reason   string
	ran      []recordedHook
	disabled bool
}

// recordedCalls reads the profile's pre-tool-use tool calls since since,
// oldest first, each with the hook decisions recorded just before it in
// its session for its tool (as hooks.check writes them), at most
// maxReplayCalls of them (the newest).
func recordedCalls(ctx context.Context, path, alias string, since time.Time) ([]recordedCall, bool, error) {
	var recs []audit.Record
	truncated := false
	f := audit.Filter{Since: since, Profile: alias, Kinds: []string{audit.KindToolCall, audit.KindHookDecision}, Limit: audit.MaxLimit}
	for {
		page, next, err := audit.Query(ctx, path, f)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, page...)
		if next == 0 {
			break
		}
		if len(recs) >= 4*maxReplayCalls {
			truncated = true
			break
		}
		f.Before = next
	}
	slices.Reverse(recs) // oldest first
	type key struct{ session, tool string }
	pending := map[key][]recordedHook{}
	var calls []recordedCall
	for _, r := range recs {
		var d struct {
			Event    string `json:"event"`
			Hook     string `json:"hook"`
			Hooks    int    `json:"hooks"`
			Reason   string `json:"reason"`
			Kind     string `json:"kind"`
			Disabled bool   `json:"disabled"`
		}
		_ = json.Unmarshal(r.Detail, &d) // a record without a detail has none of these
		if d.Event != hook.PreToolUse {
			continue
		}
		k := key{r.Session, r.Target}
		switch r.Kind {
		case audit.KindHookDecision:
			pending[k] = append(pending[k], recordedHook{id: d.Hook, allow: r.Decision == audit.Allow})
		case audit.KindToolCall:
			c := recordedCall{seq: r.Seq, time: r.Time, session: r.Session, tool: r.Target, allow: r.Decision == audit.Allow,
				hooks: d.Hooks, reason: d.Reason, disabled: d.Disabled}
			if ran := pending[k]; len(ran) >= d.Hooks {
				c.ran = ran[len(ran)-d.Hooks:]
			} else {
				c.ran = nil
				c.hooks = -1 // its decisions are not in the window
			}
			delete(pending, k)
			calls = append(calls, c)
		}
	}
	if len(calls) > maxReplayCalls {
		calls, truncated = calls[len(calls)-maxReplayCalls:], true
	}
	return calls, truncated, nil
}

// sameHook reports whether two hooks judge alike: same event, command,
// match and time limit.
func sameHook(a, b hook.Hook) bool {
	eff := func(d time.Duration) time.Duration {
		if d <= 0 {
			return hook.DefaultTimeout
		}
		return d
	}
	return a.Event == b.Event && a.Shell == b.Shell && a.Match == b.Match && eff(a.Timeout) == eff(b.Timeout)
}

// replay decides each recorded call again with the candidate hooks,
// without running any: a candidate hook that matches the call's tool
// decides as the same hook (same definition as a current hook) decided
// when the call was recorded; a hook that did not run then (new, changed,
// or after one that refused) cannot be decided without the call's input,
// which the audit log does not keep. All hooks must allow, so one known
// refusal decides, whatever the others would say.
func replay(out *api.HookTestResult, calls []recordedCall, current, candidate []hook.Hook) {
	for _, c := range calls {
		out.Calls++
		skip := func(reason string) {
			if len(out.NotReplayable) < maxNotReplayable {
				out.NotReplayable = append(out.NotReplayable, api.HookNotReplayable{Seq: c.seq, Tool: c.tool, Reason: reason})
			}
		}
		switch {
		case c.disabled || (!c.allow && c.hooks == 0):
			skip("refused before any hook ran (" + c.reason + "): hooks do not decide it")
			continue
		case c.hooks < 0:
			skip("its hook decisions are not in the audit log's window; widen --since")
			continue
		}
		known := map[string]bool{}
		for _, h := range c.ran {
			known[h.id] = h.allow
		}
		allow, unknown, why := true, "", ""
		for i, h := range candidate {
			if !h.Matches(hook.PreToolUse, c.tool) {
				continue
			}
			name := h.ID
			if name == "" {
				name = "#" + strconv.Itoa(i+1)
			}
			src := -1
			for j, cur := range current {
				if sameHook(cur, h) && (src < 0 || cur.ID == h.ID) {
					src = j
				}
			}
			if src < 0 {
				if unknown == "" {
					unknown = fmt.Sprintf("candidate hook %s is new or changed and would judge this call, but %s", name, noInput)
				}
				continue
			}
			ok, ran := known[current[src].ID]
			if !ran {
				if unknown == "" {
					unknown = fmt.Sprintf("hook %s did not run on this call when it was recorded (it came after a refusal, or was added later), and %s", name, noInput)
				}
				continue
			}
			if !ok {
				allow, why = false, fmt.Sprintf("hook %s (%s) refused it when it was recorded", name, shownCommand(h.Shell))
				break
			}
		}
		if allow && unknown != "" {
			skip(unknown)
			continue
		}
		out.Replayed++
		if allow == c.allow {
			out.Unchanged++
			continue
		}
		if allow {
			why = "no hook of the set refuses it: " + c.reason
		}
		out.Flips = append(out.Flips, api.HookFlip{Seq: c.seq, Time: c.time.UTC().Format(time.RFC3339), Session: c.session, Tool: c.tool,
			From: decisionWord(c.allow), To: decisionWord(allow), Why: why})
	}
}

func decisionWord(allow bool) string {
	if allow {
		return audit.Allow
	}
	return audit.Deny
}
