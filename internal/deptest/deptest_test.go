package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/neullabs/ringlet"

// The packages the rules name.
const (
	cliPkg      = module + "/cmd/ringlet/cli"
	daemonPkg   = module + "/cmd/ringlet/daemon"
	gatewayPkg  = module + "/gateway"
	mcpPkg      = module + "/mcp"
	launchPkg   = module + "/launch"
	auditWriter = module + "/audit/auditlog"
	keyStores   = module + "/credentials/keystore"
	sessStore   = module + "/sessionstore"
	otelExport  = module + "/otelexport"
)

// cliMustNotLink are what the CLI may not depend on, even indirectly: it
// reaches the daemon's state only through package client.
var cliMustNotLink = map[string]string{
	gatewayPkg:  "the CLI is a client: the gateway runs in the daemon",
	mcpPkg:      "the CLI is a client: the MCP gateway runs in the daemon (the CLI may use mcp/mcpserver and mcp/stdiobridge)",
	launchPkg:   "the daemon builds every sandbox; the CLI runs the plan it gets (POST /api/sessions/{id}/plan)",
	auditWriter: "the daemon is the only writer of the audit log (the CLI may read it with package audit)",
	keyStores:   "the daemon is the only writer of the credential store",
	sessStore:   "the daemon keeps the sessions across restarts; the CLI asks it (GET /api/sessions)",
	otelExport:  "the daemon exports the audit trail over OpenTelemetry",
}

// daemonOnly are opened by the daemon's wiring and by no other package's
// code (tests may use them).
var daemonOnly = map[string]string{
	auditWriter: "the daemon is the only writer of the audit log",
	keyStores:   "the daemon is the only writer of the credential store",
}

// pkg is what go list says of one package.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

// list runs go list on every package of the module for goos.
func list(t *testing.T, goos string) map[string]*pkg {
	t.Helper()
	// The go command that runs the tests: go test puts its GOROOT's bin
	// first on PATH.
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Env = append(cmd.Environ(), "GOOS="+goos)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list (GOOS=%s): %v\n%s", goos, err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = &p
	}
	return pkgs
}

// chain is an import path from one package to another through the
// module's packages, for the message: "a -> b -> c".
func chain(pkgs map[string]*pkg, from, to string) string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var path []string
			for p := to; p != ""; p = prev[p] {
				path = append(path, strings.TrimPrefix(p, module+"/"))
			}
			slices.Reverse(path)
			return strings.Join(path, " -> ")
		}
		if p := pkgs[cur]; p != nil {
			for _, i := range p.Imports {
				if _, seen := prev[i]; !seen {
					prev[i] = cur
					queue = append(queue, i)
				}
			}
		}
	}
	return from + " -> ... -> " + to
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func TestDependencies(t *testing.T) {
	t.Parallel()
	for _, goos := range []string{"linux", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			t.Parallel()
			pkgs := list(t, goos)
			// A rule about a package that was renamed away would pass
			// silently.
			for _, p := range []string{cliPkg, daemonPkg, gatewayPkg, mcpPkg, launchPkg, auditWriter, keyStores, sessStore} {
				if pkgs[p] == nil {
					t.Fatalf("package %s is not in the module any more: update this test", p)
				}
			}

			// The browser tests' driver is a test dependency of the
			// module, never part of the binary.
			if bin := pkgs[module+"/cmd/ringlet"]; bin == nil {
				t.Fatalf("package %s/cmd/ringlet is not in the module any more: update this test", module)
			} else {
				for _, dep := range bin.Deps {
					if under(dep, "github.com/chromedp") {
						t.Errorf("the ringlet binary links %s (%s), want the browser driver in tests only", dep, chain(pkgs, module+"/cmd/ringlet", dep))
					}
				}
			}
			for _, dep := range pkgs[cliPkg].Deps {
				if why, bad := cliMustNotLink[dep]; bad {
					t.Errorf("%s depends on %s (%s), want it not to: %s", cliPkg, dep, chain(pkgs, cliPkg, dep), why)
				}
			}

			for path, p := range pkgs {
				imports := map[string]bool{}
				for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
					for _, i := range list {
						imports[i] = true
					}
				}
				for i := range imports {
					if under(i, module+"/cmd") && !under(path, module+"/cmd") {
						t.Errorf("%s imports %s, want no package outside cmd to import a command", path, i)
					}
					if i == gatewayPkg && path != gatewayPkg && !under(path, module+"/cmd") {
						t.Errorf("%s imports %s, want only cmd to: the gateway is the top of the daemon, and lower packages do not know it", path, i)
					}
				}
				for _, i := range p.Imports {
					if why, only := daemonOnly[i]; only && path != daemonPkg {
						t.Errorf("%s imports %s, want only %s to: %s", path, i, daemonPkg, why)
					}
				}
			}
		})
	}
}
