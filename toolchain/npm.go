package toolchain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxDeps bounds the dependency packages bound for one agent.
const maxDeps = 64

// packageDeps are the installed packages that the package at root depends
// on (dependencies and optionalDependencies, recursively) and that npm put
// outside root, beside it in a node_modules directory: Codex CLI's launcher,
// for one, runs a native binary from the optional package
// @openai/codex-linux-x64. Packages nested in root's own node_modules are
// bound with root.
func packageDeps(root string) []string {
	var out []string
	seen := map[string]bool{root: true}
	queue := []string{root}
	for len(queue) > 0 && len(out) < maxDeps {
		pkg := queue[0]
		queue = queue[1:]
		for _, name := range depNames(pkg) {
			dir := resolvePackage(pkg, name)
			if dir == "" || seen[dir] || underSystem(dir) {
				continue
			}
			seen[dir] = true
			queue = append(queue, dir)
			if !strings.HasPrefix(dir, root+"/") {
				out = append(out, dir)
			}
		}
	}
	return out
}

// depNames reads the dependency names from pkg's package.json; a file that
// cannot be read or parsed has none.
func depNames(pkg string) []string {
	data, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil || len(data) > 1<<20 {
		return nil
	}
	var m struct {
		Dependencies         map[string]json.RawMessage `json:"dependencies"`
		OptionalDependencies map[string]json.RawMessage `json:"optionalDependencies"`
	}
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	var names []string
	for _, deps := range []map[string]json.RawMessage{m.Dependencies, m.OptionalDependencies} {
		for name := range deps {
			if validPackageName(name) {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names
}

// validPackageName accepts npm names ("pkg", "@scope/pkg") that cannot
// climb out of a node_modules directory.
func validPackageName(name string) bool {
	parts := strings.Split(name, "/")
	if len(parts) > 2 || len(parts) == 2 && !strings.HasPrefix(parts[0], "@") || len(parts) == 1 && strings.HasPrefix(name, "@") {
		return false
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || p == "@" || strings.ContainsAny(p, "\\\x00") {
			return false
		}
	}
	return true
}

// resolvePackage finds name the way Node does from inside pkg: in
// pkg/node_modules, then in each node_modules directory above it. It
// returns the package directory with symlinks resolved, or "".
func resolvePackage(pkg, name string) string {
	for d := pkg; d != "/" && d != "."; d = filepath.Dir(d) {
		if filepath.Base(d) == "node_modules" {
			continue
		}
		cand := filepath.Join(d, "node_modules", name)
		if fi, err := os.Stat(filepath.Join(cand, "package.json")); err == nil && fi.Mode().IsRegular() {
			real, err := filepath.EvalSymlinks(cand)
			if err != nil {
				return ""
			}
			return real
		}
	}
	return ""
}

// packageRoot is the npm package that holds p: the nearest directory
// above it with a package.json that sits in a node_modules directory (or
// in a @scope there). Not any directory with a package.json: a dist/
// inside the package may have one, and so may ~ (npm install run there),
// which would bind the whole home.
func packageRoot(p string) string {
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		parent := filepath.Dir(d)
		if strings.HasPrefix(filepath.Base(parent), "@") {
			parent = filepath.Dir(parent)
		}
		if filepath.Base(parent) != "node_modules" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "package.json")); err == nil {
			return d
		}
	}
	return ""
}
