package api

import (
	"slices"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/toolchain"
)

// MCPServerRequest is the body of POST /api/mcp/servers; the answer is
// an MCPServerAdded.
type MCPServerRequest struct {
	Profile string   `json:"profile"`
	Name    string   `json:"name"`
	Command []string `json:"command,omitempty"`
	URL     string   `json:"url,omitempty"`
	Timeout string   `json:"timeout,omitempty"`
	// Credential (provider/alias) is sent to an HTTP server as a bearer
	// token by the gateway; the agent never sees it.
	Credential string `json:"credential,omitempty"`
	// Env and Secrets are a stdio server's variables: plain values, and
	// references (provider/alias, or alias for mcp/alias) to keys in the
	// credential store, read when it starts (see mcpserver.Config).
	Env     map[string]string `json:"env,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
	// Headers and HeaderSecrets are an HTTP server's headers: plain
	// values, and references ("[SCHEME ]provider/alias") to keys in the
	// credential store, read at each request (see mcpserver.Config).
	Headers       map[string]string `json:"headers,omitempty"`
	HeaderSecrets map[string]string `json:"header_secrets,omitempty"`
	// The sandbox of a stdio server (see mcpserver.Config).
	ReadOnly  []string `json:"ro,omitempty"`
	ReadWrite []string `json:"rw,omitempty"`
	Network   string   `json:"network,omitempty"`
	NoSandbox bool     `json:"no_sandbox,omitempty"`
	// Path and Shims are how the command was found in the user's shell
	// (see mcpserver.Config): its PATH, and the version managers' answers
	// for the shims on the way.
	Path  string            `json:"path,omitempty"`
	Shims map[string]string `json:"shims,omitempty"`
	// Imported marks a server read from another client's configuration
	// ('mcp import'), which an agent may have written: like a server
	// without a sandbox, it may not run what the profile's agents can
	// write, sandboxed or not.
	Imported bool `json:"imported,omitempty"`
}

// MCPServerAdded is the answer to POST /api/mcp/servers: the server as
// stored and, for a stdio server, what runs and what its sandbox reads.
type MCPServerAdded struct {
	mcpserver.Config
	Runtime *toolchain.Resolution `json:"runtime,omitempty"`
}

// MCPServerList is the answer to GET /api/mcp/servers?profile=P.
type MCPServerList struct {
	Servers []mcpserver.Status `json:"servers"`
}

// MCPApproveRequest is the body of POST
// /api/mcp/servers/{profile}/{name}/approve (none: approve everything).
type MCPApproveRequest struct {
	// Tools approves only these tools' changes (a removed tool's name
	// drops its pin); none approves the server whole.
	Tools []string `json:"tools,omitempty"`
	// Prompts and Resources approve only these prompts' (by name) and
	// resources' or resource templates' (by URI or URI template)
	// changes; with Tools, all of those named.
	Prompts   []string `json:"prompts,omitempty"`
	Resources []string `json:"resources,omitempty"`
	// DryRun only shows the diff.
	DryRun bool `json:"dry_run,omitempty"`
	// Observed is the diff's observed of a dry run: the approval is
	// refused (409) if the server serves anything else by then.
	Observed string `json:"observed,omitempty"`
}

// Selection is what the request approves, as mcpserver.Approve names
// it: tools by name, prompt:NAME, resource:URI; none: everything.
func (r MCPApproveRequest) Selection() []string {
	out := slices.Clone(r.Tools)
	for _, p := range r.Prompts {
		out = append(out, mcpserver.KindPrompt+":"+p)
	}
	for _, u := range r.Resources {
		out = append(out, mcpserver.KindResource+":"+u)
	}
	return out
}

// MCPApproved is the answer to POST
// /api/mcp/servers/{profile}/{name}/approve: how the server differed
// from what was approved, the tools (and removed tools) whose changes
// were approved, with prompts as prompt:NAME and resources as
// resource:URI (none for a dry run), and how many tools it lists.
type MCPApproved struct {
	Approved []string          `json:"approved"`
	Profile  string            `json:"profile"`
	Server   string            `json:"server"`
	Tools    int               `json:"tools"`
	DryRun   bool              `json:"dry_run,omitempty"`
	Diff     mcpserver.PinDiff `json:"diff"`
}

// MCPServerChange is the body of PATCH /api/mcp/servers/{profile}/{name}:
// the variables of a stdio server, or the headers of an HTTP server, to
// unset and to set. The answer is the
// server as stored (mcpserver.Config); a run of it restarts.
type MCPServerChange = mcpserver.EnvChange

// MCPToolsChange is the body of PATCH
// /api/mcp/servers/{profile}/{name}/tools: tools to enable and disable,
// by name or glob. The answer is an MCPTools.
type MCPToolsChange = mcpserver.ToolChange

// MCPTools is the answer to GET and PATCH
// /api/mcp/servers/{profile}/{name}/tools: the server's tools as sessions
// see them, each enabled or disabled, and why.
type MCPTools struct {
	Profile string `json:"profile"`
	Server  string `json:"server"`
	// Default is the profile's default for tools no rule names: all or
	// none.
	Default string               `json:"default"`
	Rules   []mcpserver.ToolRule `json:"rules"`
	// State and Error are the server's (its tools are known once it ran).
	State string                 `json:"state"`
	Error string                 `json:"error,omitempty"`
	Tools []mcpserver.ToolStatus `json:"tools"`
	// Resources (with resource templates) and Prompts say whether the
	// server's are offered to sessions, and why.
	Resources MCPCatalogState `json:"resources"`
	Prompts   MCPCatalogState `json:"prompts"`
	// PromptRules and ResourceRules are the server's rules of single
	// prompts and resources ('mcp tools --enable-prompt ...').
	PromptRules   []mcpserver.ToolRule `json:"prompt_rules"`
	ResourceRules []mcpserver.ToolRule `json:"resource_rules"`
	// Items are the server's prompts, resources and resource templates,
	// each enabled, disabled or hidden until approved, and why.
	Items []mcpserver.ItemStatus `json:"items"`
	// Unmatched are the patterns of the change that match none of the
	// server's current tools (prompts, resources and templates, for their
	// patterns): stored all the same.
	Unmatched []string `json:"unmatched,omitempty"`
}

// MCPCatalogState is whether a server's resources or prompts are
// offered: By is "explicit" ('mcp tools --resources/--prompts on|off')
// or "default" (the profile's tools default).
type MCPCatalogState struct {
	Enabled bool   `json:"enabled"`
	By      string `json:"by"`
}

// MCPToolsDefault is the body and answer of PUT
// /api/mcp/tools-default/{profile}: the profile's default for tools no
// rule names.
type MCPToolsDefault struct {
	Profile string `json:"profile,omitempty"`
	// Default is all or none; empty in a request leaves it.
	Default string `json:"default,omitempty"`
	// Search is on (sessions are served search_tools and call_tool
	// instead of every upstream tool) or off; empty in a request leaves it.
	Search string `json:"search,omitempty"`
}

// Values of MCPToolsDefault.Search.
const (
	SearchOn  = "on"
	SearchOff = "off"
)

// MCPAuthRequest is the body of POST
// /api/mcp/servers/{profile}/{name}/auth: start an OAuth authorization
// of an HTTP server ('mcp auth').
type MCPAuthRequest struct {
	// ClientID is a client the user registered with the authorization
	// server; without one Ringlet registers itself dynamically.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret names the secret of that client in the credential
	// store (provider/alias), for a confidential client.
	ClientSecret string   `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	// Port of the loopback redirect; 0 for any free one.
	Port int `json:"port,omitempty"`
	// Timeout is how long the browser has to come back (a duration; 5m
	// when empty).
	Timeout string `json:"timeout,omitempty"`
}

// MCPAuthFlow is the answer to POST .../auth: the URL to open in the
// user's browser, and the loopback address it comes back to.
type MCPAuthFlow struct {
	Profile          string    `json:"profile"`
	Server           string    `json:"server"`
	AuthorizationURL string    `json:"authorization_url"`
	RedirectURI      string    `json:"redirect_uri"`
	Expires          time.Time `json:"expires"`
}

// MCPAuthStatus is the answer to GET and DELETE .../auth: whether the
// server is authorized, and how, never a token.
type MCPAuthStatus struct {
	Profile string `json:"profile"`
	Server  string `json:"server"`
	URL     string `json:"url"`
	// State is the server's, as 'mcp list' shows it (needs-auth when it
	// asks for an authorization it has not got).
	State      string `json:"state"`
	Authorized bool   `json:"authorized"`
	// Pending: an authorization is waiting for the browser.
	Pending      bool       `json:"pending,omitempty"`
	Issuer       string     `json:"issuer,omitempty"`
	ClientID     string     `json:"client_id,omitempty"`
	Registered   bool       `json:"registered,omitempty"`
	Scopes       []string   `json:"scopes,omitempty"`
	AuthorizedAt *time.Time `json:"authorized_at,omitempty"`
	Expires      *time.Time `json:"expires,omitempty"`
	Refreshable  bool       `json:"refreshable,omitempty"`
	// Error says how the last authorization failed, with what to do.
	Error string `json:"error,omitempty"`
	// Revoked (DELETE): the tokens were sent to the revocation endpoint;
	// RevokeError says why that failed (they were deleted all the same).
	Revoked     bool   `json:"revoked,omitempty"`
	RevokeError string `json:"revoke_error,omitempty"`
}
