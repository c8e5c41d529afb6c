package provider

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCost(t *testing.T) {
	t.Parallel()
	const m = 1_000_000
	tests := []struct {
		name                    string
		model                   string
		in, out, cacheR, cacheW int64
		want                    float64
		ok                      bool
	}{
		{"exact", "claude-sonnet-4", m, 0, 0, 0, 3.0, true},
		{"exact all kinds", "claude-opus-4", m, m, m, m, 15 + 75 + 1.5 + 18.75, true},
		{"dated model by prefix", "claude-sonnet-4-5-20250929", m, m, m, m, 3 + 15 + 0.3 + 3.75, true},
		{"longest prefix wins", "gpt-4o-mini-2024-07-18", m, m, 0, 0, 0.15 + 0.6, true},
		{"shorter prefix", "gpt-4o-2024-08-06", 2 * m, 0, 0, 0, 5.0, true},
		{"small counts", "claude-haiku-4-5", 1000, 500, 0, 0, (1000*1.0 + 500*5.0) / 1e6, true},
		{"zero tokens", "claude-sonnet-4", 0, 0, 0, 0, 0, true},
		{"unknown", "llama-3.1-70b", m, m, 0, 0, 0, false},
		{"model shorter than every key", "gpt", m, 0, 0, 0, 0, false},
		{"prefix of a key is not a match", "claude-sonnet", m, 0, 0, 0, 0, false},
		{"empty", "", m, 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Cost(tt.model, tt.in, tt.out, tt.cacheR, tt.cacheW)
			if ok != tt.ok {
				t.Fatalf("Cost(%q) ok: got %v, want %v", tt.model, ok, tt.ok)
			}
			if math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("Cost(%q): got %v, want %v", tt.model, got, tt.want)
			}
		})
	}
}

func TestLoadPrices(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string // "" means no prices.toml
		model   string
		want    float64 // cost of one million input and one million output tokens
		ok      bool
		wantErr string
	}{
		{name: "no file is the built-in table", model: "claude-sonnet-4", want: 18, ok: true},
		{
			name:  "override",
			file:  "[models.\"claude-sonnet-4\"]\ninput = 1.0\noutput = 2.0\n",
			model: "claude-sonnet-4-5-20250929", want: 3, ok: true,
		},
		{
			name:  "added model",
			file:  "[models.\"my-local-model\"]\ninput = 0.5\noutput = 0.25\n",
			model: "my-local-model-q4", want: 0.75, ok: true,
		},
		{
			name:  "added model leaves the rest",
			file:  "[models.\"my-local-model\"]\ninput = 0.5\n",
			model: "claude-opus-4", want: 90, ok: true,
		},
		{
			// A longer user prefix takes precedence over a built-in one.
			name:  "longer user prefix",
			file:  "[models.\"claude-sonnet-4-5\"]\ninput = 10.0\noutput = 10.0\n",
			model: "claude-sonnet-4-5-20250929", want: 20, ok: true,
		},
		{name: "malformed", file: "[models.\"x\"\ninput = 1\n", wantErr: "prices.toml"},
		{name: "wrong type", file: "[models.\"x\"]\ninput = \"cheap\"\n", wantErr: "prices.toml"},
		{name: "unknown key", file: "[models.\"x\"]\ninptu = 1.0\n", wantErr: "prices.toml"},
		{name: "unknown table", file: "[model.\"x\"]\ninput = 1.0\n", wantErr: "prices.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "prices.toml")
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p, err := LoadPrices(dir)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got no error, want one naming %s", path)
				}
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("got error %q, want it to name %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			got, ok := p.Cost(tt.model, 1_000_000, 1_000_000, 0, 0)
			if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("Cost(%q): got %v, %v; want %v, %v", tt.model, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestLoadPricesKeepsBuiltin checks that an override in one table does not
// leak into the built-in one.
func TestLoadPricesKeepsBuiltin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prices.toml"), []byte("[models.\"claude-opus-4\"]\ninput = 0.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPrices(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Cost("claude-opus-4", 1_000_000, 0, 0, 0); got != 0 {
		t.Fatalf("overridden table: got %v, want 0", got)
	}
	if got, _ := Cost("claude-opus-4", 1_000_000, 0, 0, 0); got != 15 {
		t.Fatalf("built-in table after an override: got %v, want 15", got)
	}
}

func TestLoadPricesUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A directory where the file should be cannot be read.
	if err := os.Mkdir(filepath.Join(dir, "prices.toml"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrices(dir); err == nil {
		t.Fatal("got no error for an unreadable prices.toml, want one")
	}
}
