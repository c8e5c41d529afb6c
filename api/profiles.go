package api

import "github.com/neullabs/ringlet/profile"

// ProfileRequest is the body of POST /api/profiles.
type ProfileRequest struct {
	Alias     string   `json:"alias"`
	Agent     string   `json:"agent"`
	Provider  string   `json:"provider"`
	Model     string   `json:"model,omitempty"`
	Workspace string   `json:"workspace,omitempty"`
	Endpoint  string   `json:"endpoint,omitempty"`
	Command   []string `json:"command,omitempty"`
	Network   string   `json:"network,omitempty"`
	ReadOnly  []string `json:"ro,omitempty"`
	ReadWrite []string `json:"rw,omitempty"`
	// AllowGitConfig lets the agent write .git/hooks and .git/config.
	AllowGitConfig bool `json:"allow_git_config,omitempty"`
	// TrustWorkspace tells the agent that the user trusts the workspace.
	TrustWorkspace bool     `json:"trust_workspace,omitempty"`
	AllowHosts     []string `json:"allow_hosts,omitempty"`
	Protect        []string `json:"protect,omitempty"`
	Unprotect      []string `json:"unprotect,omitempty"`
	// Sandbox limits (0: the defaults); sizes in bytes.
	MaxProcs  int   `json:"max_procs,omitempty"`
	MaxMemory int64 `json:"max_memory,omitempty"`
	TmpSize   int64 `json:"tmp_size,omitempty"`
	// StrictHooks refuses a Claude Code session's MCP calls that no
	// PreToolUse check allowed (docs/audit.md, "Hook bypass").
	StrictHooks bool `json:"strict_hooks,omitempty"`
}

// ProfileUpdate is the body of PATCH /api/profiles/{alias}: the fields to
// change; absent fields stay as they are.
type ProfileUpdate struct {
	Model          *string   `json:"model,omitempty"`
	Workspace      *string   `json:"workspace,omitempty"`
	Endpoint       *string   `json:"endpoint,omitempty"`
	Network        *string   `json:"network,omitempty"`
	ReadOnly       *[]string `json:"ro,omitempty"`
	ReadWrite      *[]string `json:"rw,omitempty"`
	AllowGitConfig *bool     `json:"allow_git_config,omitempty"`
	TrustWorkspace *bool     `json:"trust_workspace,omitempty"`
	AllowHosts     *[]string `json:"allow_hosts,omitempty"`
	Protect        *[]string `json:"protect,omitempty"`
	Unprotect      *[]string `json:"unprotect,omitempty"`
	// Sandbox limits; 0 resets one to the default.
	MaxProcs  *int   `json:"max_procs,omitempty"`
	MaxMemory *int64 `json:"max_memory,omitempty"`
	TmpSize   *int64 `json:"tmp_size,omitempty"`
	// StrictHooks turns strict hooks on or off.
	StrictHooks *bool `json:"strict_hooks,omitempty"`
}

// ProfileView is a profile as the API shows it: where its key is, never
// the key.
type ProfileView struct {
	profile.Profile
	// Home is the HOME of the profile's sandboxed agents and MCP servers,
	// UnsandboxedHome that of those run without a sandbox.
	Home            string `json:"home"`
	UnsandboxedHome string `json:"unsandboxed_home"`
	// Protected is what the sandbox keeps read-only in the workspace and
	// each read-write directory: the defaults, plus Protect, minus
	// Unprotect.
	Protected []string `json:"protected"`
	Key       string   `json:"key"` // "stored (keyring)", "stored (file)", "missing"
	Sessions  int      `json:"sessions"`
}

// ProfileList is the answer to GET /api/profiles.
type ProfileList struct {
	Profiles []ProfileView `json:"profiles"`
}

// ProfileDeleted is the answer to DELETE /api/profiles/{alias}.
type ProfileDeleted struct {
	Deleted    string `json:"deleted"`
	KeyRemoved bool   `json:"key_removed"`
}

// ConnectRequest is the body of POST /api/profiles/{alias}/connect: write
// Ringlet's MCP server into the agent's own configuration in the
// profile's HOMEs. Agent is the profile's agent when empty.
type ConnectRequest struct {
	Agent string `json:"agent,omitempty"`
}

// Connected is the answer to POST /api/profiles/{alias}/connect.
type Connected struct {
	Profile string `json:"profile"`
	Agent   string `json:"agent"`
	// Server is the name of Ringlet's entry in the agent's MCP servers.
	Server string `json:"server"`
	// Files are the configuration files written: the sandboxed HOME's,
	// then the unsandboxed HOME's.
	Files []string `json:"files"`
	// Warnings are what the user should know, one sentence each (what
	// the agent had changed in its config and was put back first).
	Warnings []string `json:"warnings,omitempty"`
}

// ConfigApproved is the answer to POST /api/profiles/{alias}/config/approve:
// the parts of the agent's config in the profile's sandboxed HOME that
// run code, approved as they are (files, and keys as "file#[key path]";
// never their values).
type ConfigApproved struct {
	Profile string   `json:"profile"`
	Agent   string   `json:"agent"`
	Items   []string `json:"items"`
}

// ProviderRequest is the body of POST /api/providers.
type ProviderRequest struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	BaseURL   string            `json:"base_url"`
	Format    string            `json:"format"`
	Auth      string            `json:"auth"`
	Endpoints map[string]string `json:"endpoints,omitempty"`
	// Replace allows the request to replace a provider of the same id,
	// built-in or added before; without it that is a 409 "exists".
	Replace bool `json:"replace,omitempty"`
}

// ProviderAdded is the answer to POST /api/providers: the provider as
// stored, and the one it replaced, if any.
type ProviderAdded struct {
	profile.Provider
	Replaced *profile.Provider `json:"replaced,omitempty"`
}

// ProviderList is the answer to GET /api/providers.
type ProviderList struct {
	Providers []profile.Provider `json:"providers"`
}

// AgentList is the answer to GET /api/agents.
type AgentList struct {
	Agents []profile.Agent `json:"agents"`
}
