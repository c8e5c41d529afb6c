package test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// TestPricesImport prices a model the built-in table does not know, as a
// user does: a request through the proxy to the fake provider shows cost
// "unknown" in usage; 'prices import' of a LiteLLM file (a dry run first)
// prices it, recorded in the audit log; hostile files are refused with one
// line; 'prices reset' makes it unknown again.
func TestPricesImport(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	key := w.newProfile("generic", "an", "fake", "--command", "true")
	s := w.startSession("an")
	const model = "claude-sonnet-4-5-20250929"
	u := fakeprovider.Usage{Input: 1000, Output: 200, CacheRead: 3000, CacheWrite: 400}
	w.fake.Usage.Store(&u)
	status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), `{"model":"`+model+`","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 {
		t.Fatalf("request: got %d %s, want 200", status, body)
	}
	w.waitRecords(t, s.ID, 1)

	type row struct {
		Key      string   `json:"key"`
		CostUSD  *float64 `json:"cost_usd"`
		Unpriced int64    `json:"unpriced_requests"`
	}
	usage := func() row {
		t.Helper()
		var rep struct {
			Rows []row `json:"rows"`
		}
		out := mustRun(t, w.e, "usage", "--by", "model", "--json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) != 1 || rep.Rows[0].Key != model {
			t.Fatalf("usage --json: got %q, %v; want one row for %s", out, err, model)
		}
		return rep.Rows[0]
	}

	// Unknown, and said so.
	if r := usage(); r.CostUSD != nil || r.Unpriced != 1 {
		t.Fatalf("before the import: got cost %v, %d unpriced; want none, 1 unpriced", r.CostUSD, r.Unpriced)
	}
	if out := mustRun(t, w.e, "usage", "--by", "model"); !strings.Contains(out, "unknown") {
		t.Fatalf("usage before the import: got %q, want the cost unknown", out)
	}
	if out := mustRun(t, w.e, "prices", "show", model); !strings.Contains(out, "unknown") {
		t.Fatalf("prices show before the import: got %q, want unknown", out)
	}

	file := filepath.Join("..", "provider", "testdata", "prices", "litellm.json")
	if out := mustRun(t, w.e, "prices", "import", file, "--dry-run"); !strings.Contains(out, "would import 4 prices of 3 providers") {
		t.Fatalf("import --dry-run: got %q, want what it would import", out)
	}
	if r := usage(); r.CostUSD != nil {
		t.Fatalf("after a dry run: got cost %v, want still unknown", *r.CostUSD)
	}

	// Hostile files: one line that says what is wrong, exit non-zero,
	// nothing stored.
	dir := t.TempDir()
	for name, content := range map[string]string{
		"invalid.json":  `{"x": `,
		"negative.json": `{"` + model + `": {"litellm_provider": "anthropic", "input_cost_per_token": -3e-06}}`,
		"huge.json":     `{"` + model + `": {"litellm_provider": "anthropic", "input_cost_per_token": 3}}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := w.e.Run("prices", "import", path)
		if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stderr == "" {
			t.Errorf("import %s: exit %d, stderr %q; want non-zero and one line", name, code, stderr)
		}
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, 33<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := w.e.Run("prices", "import", big); code == 0 || !strings.Contains(stderr, "larger than") {
		t.Errorf("import of 33 MiB: exit %d, stderr %q; want it refused as too large", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(w.e.DataHome, "ringlet", "prices.json")); err == nil {
		t.Fatal("after refused imports: a price table is stored, want none")
	}

	var imp struct {
		Format string `json:"format"`
		Models int    `json:"models"`
		DryRun bool   `json:"dry_run"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "prices", "import", file, "--json")), &imp); err != nil || imp.Format != "litellm" || imp.Models != 4 || imp.DryRun {
		t.Fatalf("import --json: got %+v, %v; want 4 litellm prices stored", imp, err)
	}
	fi, err := os.Stat(filepath.Join(w.e.DataHome, "ringlet", "prices.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored table: got %v, %v; want mode 0600", fi, err)
	}
	// The provider "fake" is the user's own: the model is priced as every
	// provider listing it agrees (here Anthropic alone).
	r := usage()
	want := (1000*3.0 + 200*15.0 + 3000*0.3 + 400*3.75) / 1e6
	if r.CostUSD == nil || math.Abs(*r.CostUSD-want) > 1e-9 || r.Unpriced != 0 {
		t.Fatalf("after the import: got cost %v, %d unpriced; want %.6f", r.CostUSD, r.Unpriced, want)
	}
	out := mustRun(t, w.e, "prices", "show", model)
	for _, wantText := range []string{"input        3 USD per million tokens", "cache write  3.75", "imported: LiteLLM model map litellm.json"} {
		if !strings.Contains(out, wantText) {
			t.Errorf("prices show: got %q, want %q", out, wantText)
		}
	}
	var list struct {
		Prices []struct {
			Provider, Model, Layer string
		} `json:"prices"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "prices", "list", "--model", "claude-sonnet-4*", "--provider", "anthropic", "--json")), &list); err != nil || len(list.Prices) != 2 ||
		list.Prices[1].Model != model || list.Prices[1].Layer != "imported" || list.Prices[0].Layer != "embedded" {
		t.Fatalf("prices list: got %+v, %v; want the built-in sonnet 4 and the imported %s", list.Prices, err, model)
	}
	if out := mustRun(t, w.e, "audit", "query", "--kind", "prices.import", "--json"); !strings.Contains(out, "litellm.json") {
		t.Fatalf("audit: got %q, want the prices.import record", out)
	}

	if out := mustRun(t, w.e, "prices", "reset"); !strings.Contains(out, "removed the imported prices") {
		t.Fatalf("reset: got %q", out)
	}
	if r := usage(); r.CostUSD != nil {
		t.Fatalf("after reset: got cost %v, want unknown again", *r.CostUSD)
	}
	w.assertNoKeyLeak(t, key)
}
