package version

import (
	"runtime/debug"
	"testing"
)

func TestGet(t *testing.T) {
	t.Parallel()
	const hash = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(v string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/neullabs/ringlet", Version: v}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, c := range []struct {
		name                   string
		version, commit, dirty string
		bi                     *debug.BuildInfo
		want                   Info
	}{
		{"make, clean tree", "v1.2.3", hash, "false", vcs("(devel)"), Info{Version: "v1.2.3", Commit: hash, Source: "make"}},
		{"make, dirty tree", "v1.2.3-4-gabc-dirty", hash, "true", nil, Info{Version: "v1.2.3-4-gabc-dirty", Commit: hash, Dirty: true, Source: "make"}},
		{"make without git", "dev", "", "", nil, Info{Version: "dev", Commit: "unknown", Source: "make"}},
		{"go install @tag", "", "", "", vcs("v1.2.3"), Info{Version: "v1.2.3", Commit: "unknown", Source: "go"}},
		{"go install @commit", "", "", "", vcs("v0.0.0-20260102030405-0123456789ab"), Info{Version: "v0.0.0-20260102030405-0123456789ab", Commit: "0123456789ab", Source: "go"}},
		{"go install @commit after a tag", "", "", "", vcs("v1.2.4-0.20260102030405-0123456789ab"), Info{Version: "v1.2.4-0.20260102030405-0123456789ab", Commit: "0123456789ab", Source: "go"}},
		{"go build in a checkout", "", "", "", vcs("v0.0.0-20260102030405-0123456789ab+dirty", "vcs", "git", "vcs.revision", hash, "vcs.modified", "true"),
			Info{Version: "v0.0.0-20260102030405-0123456789ab+dirty", Commit: hash, Dirty: true, Source: "go"}},
		{"go build, clean checkout", "", "", "", vcs("(devel)", "vcs.revision", hash, "vcs.modified", "false"), Info{Version: "dev", Commit: hash, Source: "go"}},
		{"go build -buildvcs=false", "", "", "", vcs("(devel)"), Info{Version: "dev", Commit: "unknown", Source: "go"}},
		{"no build info", "", "", "", nil, Info{Version: "dev", Commit: "unknown", Source: "go"}},
		{"not a pseudo-version", "", "", "", vcs("v1.0.0-rc-0123456789ab"), Info{Version: "v1.0.0-rc-0123456789ab", Commit: "unknown", Source: "go"}},
	} {
		got := get(c.version, c.commit, c.dirty, c.bi)
		got.GoVersion, got.Platform = "", ""
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestShort(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"0123456789abcdef0123": "0123456789ab", "0123456789ab": "0123456789ab", "unknown": "unknown"} {
		if got := (Info{Commit: in}).Short(); got != want {
			t.Errorf("Short of %q: got %q, want %q", in, got, want)
		}
	}
}
