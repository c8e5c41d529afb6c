package gateway

import (
	"context"
	"testing"

	"github.com/neullabs/ringlet/profile"
)

// TestProfileSnapIsOneRequests: within a request the profile is read
// once; a change to it is seen by the next request, and by a read
// outside any request.
func TestProfileSnapIsOneRequests(t *testing.T) {
	t.Parallel()
	configDir := t.TempDir()
	cat, err := profile.LoadCatalog(configDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.AddProvider(profile.Provider{ID: "local", BaseURL: "http://127.0.0.1:9", Format: "anthropic", Auth: profile.AuthXAPIKey}); err != nil {
		t.Fatal(err)
	}
	profiles := profile.NewStore(configDir, t.TempDir())
	if _, err := profiles.Create(cat, profile.Profile{Alias: "work", Agent: "generic", Provider: "local", Command: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	setDefault := func(d string) {
		t.Helper()
		if _, err := profiles.Update(cat, "work", func(p *profile.Profile) { p.MCPToolsDefault = d }); err != nil {
			t.Fatal(err)
		}
	}
	toolsDefault := func(ctx context.Context, alias string) string {
		t.Helper()
		p, err := profileNow(ctx, profiles, alias)
		if err != nil {
			t.Fatal(err)
		}
		return p.MCPToolsDefault
	}

	req := withProfileSnap(t.Context(), "work")
	if got := toolsDefault(req, "work"); got != "" {
		t.Fatalf("first read: got %q, want the default (empty)", got)
	}
	setDefault("none")
	if got := toolsDefault(req, "work"); got != "" {
		t.Errorf("the same request read again: got %q, want its snapshot (empty)", got)
	}
	if got := toolsDefault(withProfileSnap(t.Context(), "work"), "work"); got != "none" {
		t.Errorf("the next request: got %q, want none", got)
	}
	if got := toolsDefault(t.Context(), "work"); got != "none" {
		t.Errorf("outside a request: got %q, want none", got)
	}
	// A snapshot of another profile is not this one's.
	if _, err := profileNow(withProfileSnap(t.Context(), "other"), profiles, "work"); err != nil {
		t.Errorf("another profile's snapshot: %v", err)
	}
}
