package api

import (
	"encoding/json"

	"github.com/neullabs/ringlet/hook"
)

// HookRequest is the body of POST /api/hooks.
type HookRequest struct {
	Profile string `json:"profile"`
	Event   string `json:"event"`
	Shell   string `json:"shell"`
	Match   string `json:"match,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// HookList is the answer to GET /api/hooks and POST
// /api/hooks/{profile}/import.
type HookList struct {
	Hooks []hook.Hook `json:"hooks"`
}

// HookCheck is the body of POST /session/hooks/check; the answer is a
// hook.Decision.
type HookCheck struct {
	Event     string          `json:"event"`
	ToolName  string          `json:"tool_name"`
	ToolInput json.RawMessage `json:"tool_input"`
	// ToolOutput is the tool's result, for post-tool-use.
	ToolOutput json.RawMessage `json:"tool_output,omitempty"`
	// ToolUseID is the id of the model's tool_use the agent asks about
	// (Claude Code's hook input carries it): it places the check in the
	// turn's trace and marks that tool_use as checked.
	ToolUseID string `json:"tool_use_id,omitempty"`
}

// HookTest is the body of POST /api/hooks/{profile}/test: replay the
// profile's pre-tool-use hooks, or a candidate set, against the tool
// calls in the audit log (Since on), or run them on one Input.
type HookTest struct {
	// Since bounds the replay; zero is the whole log.
	Since string `json:"since,omitempty"`
	// Candidate, when true, replays Hooks (which may be empty) instead
	// of the profile's current hooks.
	Candidate bool        `json:"candidate,omitempty"`
	Hooks     []hook.Hook `json:"hooks,omitempty"`
	// Input is one tool call ({"tool_name", "tool_input"}, as Claude
	// Code's PreToolUse event has them): the hooks run on it, in a
	// sandbox, instead of a replay of the audit log.
	Input json.RawMessage `json:"input,omitempty"`
}

// HookTestResult is the answer to POST /api/hooks/{profile}/test.
type HookTestResult struct {
	Profile string `json:"profile"`
	// Calls is how many pre-tool-use tool calls of the profile the audit
	// log holds in the window; Replayed how many of them could be
	// decided again, Unchanged how many of those keep their decision.
	Calls     int  `json:"calls"`
	Replayed  int  `json:"replayed"`
	Unchanged int  `json:"unchanged"`
	Truncated bool `json:"truncated,omitempty"`
	// Flips are the calls whose decision would change.
	Flips []HookFlip `json:"flips"`
	// NotReplayable are the calls that cannot be decided again, and why.
	NotReplayable []HookNotReplayable `json:"not_replayable"`
	// Input is the outcome of a run on one input.
	Input *HookInputResult `json:"input,omitempty"`
}

// HookFlip is a recorded tool call whose decision would change.
type HookFlip struct {
	Seq     int64  `json:"seq"`
	Time    string `json:"time"`
	Session string `json:"session,omitempty"`
	Tool    string `json:"tool"`
	From    string `json:"from"` // allow or deny, as recorded
	To      string `json:"to"`
	// Why says what decides it now: the hook that would refuse, or that
	// no hook refuses any more.
	Why string `json:"why"`
}

// HookNotReplayable is a recorded tool call that cannot be decided again.
type HookNotReplayable struct {
	Seq    int64  `json:"seq"`
	Tool   string `json:"tool"`
	Reason string `json:"reason"`
}

// HookInputResult is the decision of the current hooks, and of the
// candidate hooks when there are any, on one input.
type HookInputResult struct {
	Tool      string         `json:"tool"`
	Current   hook.Decision  `json:"current"`
	Candidate *hook.Decision `json:"candidate,omitempty"`
	Flip      bool           `json:"flip"`
}
