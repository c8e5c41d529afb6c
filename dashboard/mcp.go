package dashboard

import (
	"net/http"
	"strings"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// MCPView is the MCP page's body: every profile's MCP servers. Every
// string from a server (tool names, descriptions, the schemas in a diff,
// its error) is chosen by the server, which may be hostile: the
// templates render each as text.
type MCPView struct {
	Profiles []MCPProfile
}

// MCPProfile is one profile's servers; Err says why they could not be
// listed.
type MCPProfile struct {
	Name    string
	Err     string
	Servers []MCPServer
}

// MCPServer is one server of a profile as the MCP page shows it.
type MCPServer struct {
	mcpserver.Status
	Profile string
	// Where is its command line (stdio) or URL (HTTP).
	Where string
	// Pending: some of what it serves is hidden until approved; Diff is
	// how it differs from what was approved (as 'ringlet mcp approve
	// --dry-run' shows it), DiffErr why that could not be read.
	Pending bool
	Diff    *mcpserver.PinDiff
	DiffErr string
	// Changes are Diff's tools and items, each with its diff a line at
	// a time.
	Changes []MCPChange
}

// MCPChange is one tool, prompt or resource not as approved: what
// changed and its diff (a compact unified diff, as 'ringlet mcp approve'
// prints it), a line at a time.
type MCPChange struct {
	Kind, Name, Change, From string
	Fields                   []string
	Lines                    []DiffLine
}

// DiffLine is a line of a diff: Op is "add", "del" or "" (context).
type DiffLine struct {
	Op, Text string
}

// NewMCPChanges are the changes of d with their diffs split in lines.
func NewMCPChanges(d mcpserver.PinDiff) []MCPChange {
	var out []MCPChange
	for _, t := range d.Tools {
		out = append(out, MCPChange{Kind: "tool", Name: t.Name, Change: t.Change, From: t.From, Fields: t.Fields, Lines: diffLines(t.Diff)})
	}
	for _, i := range d.Items {
		out = append(out, MCPChange{Kind: i.Kind, Name: i.Name, Change: i.Change, Fields: i.Fields, Lines: diffLines(i.Diff)})
	}
	return out
}

func diffLines(diff string) []DiffLine {
	var out []DiffLine
	for _, l := range strings.Split(strings.TrimSuffix(diff, "\n"), "\n") {
		op := ""
		switch {
		case strings.HasPrefix(l, "+"):
			op = "add"
		case strings.HasPrefix(l, "-"):
			op = "del"
		}
		out = append(out, DiffLine{Op: op, Text: l})
	}
	return out
}

// Sandboxed says whether the server runs in the profile's sandbox: a
// stdio server without --no-sandbox. An HTTP server runs elsewhere.
func (s MCPServer) Sandboxed() bool { return s.URL == "" && !s.NoSandbox }

// Remote says whether it is an HTTP server (not run by the daemon).
func (s MCPServer) Remote() bool { return s.URL != "" }

// RenderMCP writes the MCP page's shell.
func RenderMCP(w http.ResponseWriter) {
	render(w, http.StatusOK, "mcp", page{Title: "MCP", Nav: "mcp"})
}

// RenderMCPServers writes the MCP page's servers, what its script puts
// in place.
func RenderMCPServers(w http.ResponseWriter, v MCPView) {
	render(w, http.StatusOK, "mcpservers", v)
}

// RenderMCPError writes a refusal of the MCP page's data or of a change
// it asked for, as text.
func RenderMCPError(w http.ResponseWriter, status int, msg string) {
	render(w, status, "auditerror", msg)
}
