// Package version reports which build of Ringlet is running: its version,
// the commit it was built from and whether that tree had uncommitted
// changes.
//
// 'make build', 'make install' and 'make dist' set them at link time (-X,
// from git). Otherwise they come from the build information the go command
// embeds: 'go install github.com/neullabs/ringlet/cmd/ringlet@v1.2.3'
// records the module version v1.2.3 (a pseudo-version names its commit),
// and 'go build' in a git checkout records the commit and whether the tree
// was modified (unless -buildvcs=false).
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time by the Makefile; empty means "from the build info".
var (
	// Version is the release, such as v1.2.3 (git describe).
	Version = ""
	// Commit is the full hash of the commit built.
	Commit = ""
	// Dirty is "true" when the tree had uncommitted changes.
	Dirty = ""
)

// Info describes the running build.
type Info struct {
	// Version is the release, a pseudo-version, or "dev" when the build
	// records neither.
	Version string `json:"version"`
	// Commit is the full commit hash, a 12-digit prefix (from a
	// pseudo-version), or "unknown".
	Commit string `json:"commit"`
	// Dirty says the tree built had uncommitted changes.
	Dirty bool `json:"dirty"`
	// Source says where the above came from: "make" (link-time flags) or
	// "go" (the go command's build information).
	Source    string `json:"source"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Get returns the build's version information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(Version, Commit, Dirty, bi)
}

// get is Get over its inputs, for tests.
func get(version, commit, dirty string, bi *debug.BuildInfo) Info {
	i := Info{Version: version, Commit: commit, Dirty: dirty == "true", Source: "make", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if version != "" {
		if i.Commit == "" {
			i.Commit = "unknown"
		}
		return i
	}
	i.Source = "go"
	i.Version, i.Commit = "dev", "unknown"
	if bi == nil {
		return i
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		i.Version = v
		// go build in a modified checkout marks its version +dirty.
		i.Dirty = strings.HasSuffix(v, "+dirty")
		if rev := pseudoRevision(v); rev != "" {
			i.Commit = rev
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.modified":
			i.Dirty = s.Value == "true"
		}
	}
	return i
}

// pseudoRevision is the commit prefix at the end of a pseudo-version
// (v0.0.0-20260101120000-0123456789ab), or "".
func pseudoRevision(v string) string {
	v, _, _ = strings.Cut(v, "+")
	parts := strings.Split(v, "-")
	if len(parts) < 3 {
		return ""
	}
	stamp, rev := parts[len(parts)-2], parts[len(parts)-1]
	if i := strings.LastIndexByte(stamp, '.'); i >= 0 {
		stamp = stamp[i+1:] // vX.Y.(Z+1)-0.yyyymmddhhmmss-rev
	}
	if len(stamp) != 14 || !allIn(stamp, "0123456789") || len(rev) != 12 || !allIn(rev, "0123456789abcdef") {
		return ""
	}
	return rev
}

func allIn(s, set string) bool {
	for _, c := range s {
		if !strings.ContainsRune(set, c) {
			return false
		}
	}
	return true
}

// Short is the commit as people quote it: 12 digits.
func (i Info) Short() string {
	if len(i.Commit) > 12 && i.Commit != "unknown" {
		return i.Commit[:12]
	}
	return i.Commit
}
