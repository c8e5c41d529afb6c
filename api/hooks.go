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
