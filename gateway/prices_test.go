package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/token"
)

// TestPricesImport walks the import of a price file as 'ringlet prices
// import' sends it: a dry run stores nothing, an import is recorded and
// stored 0600 and prices what was unknown, a bad file is refused with one
// line and changes nothing, a reset records and removes it.
func TestPricesImport(t *testing.T) {
	t.Parallel()
	rec := &recordingAuditor{}
	s, err := New(withParts(t, Options{Token: token.FromString(testToken), TokenFile: filepath.Join(t.TempDir(), "http_token"), Audit: rec}))
	if err != nil {
		t.Fatal(err)
	}
	s.port.Store(testPort)
	t.Cleanup(s.life.stop)
	h := s.Handler()
	lookup := func() api.PriceLookup {
		t.Helper()
		resp := serve(t, h, newRequest("GET", "/api/prices/lookup?provider=anthropic&model=claude-sonnet-4-5-20250929", nil))
		var out api.PriceLookup
		if err := json.Unmarshal([]byte(readBody(t, resp)), &out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("lookup: got %d, %v; want 200", resp.StatusCode, err)
		}
		return out
	}
	kinds := func() string {
		var k []string
		for _, r := range rec.records() {
			if strings.HasPrefix(r.Kind, "prices.") {
				k = append(k, r.Kind)
			}
		}
		return strings.Join(k, " ")
	}
	if got := lookup(); got.Known {
		t.Fatalf("before the import: got %+v, want unknown", got)
	}
	file, err := os.ReadFile("../provider/testdata/prices/litellm.json")
	if err != nil {
		t.Fatal(err)
	}

	// A dry run says what the file holds and stores nothing.
	resp := serve(t, h, newRequest("POST", "/api/prices/import?name=litellm.json&dry_run=true", strings.NewReader(string(file))))
	var imp api.PricesImported
	if err := json.Unmarshal([]byte(readBody(t, resp)), &imp); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("dry run: got %d, %v; want 200", resp.StatusCode, err)
	}
	if !imp.DryRun || imp.Format != "litellm" || imp.Models != 4 || imp.Providers != 3 {
		t.Fatalf("dry run: got %+v, want 4 litellm models of 3 providers", imp)
	}
	if _, err := os.Stat(s.prices.file); err == nil || lookup().Known || kinds() != "" {
		t.Fatalf("after a dry run: file %v, records %q; want nothing stored or recorded", err, kinds())
	}

	// Hostile files are refused, one line each, and store nothing.
	for name, body := range map[string]string{
		"invalid JSON": `{"m": `,
		"negative":     `{"m": {"litellm_provider": "openai", "input_cost_per_token": -1e-06}}`,
		"huge":         `{"m": {"litellm_provider": "openai", "input_cost_per_token": 1}}`,
	} {
		e := assertError(t, serve(t, h, newRequest("POST", "/api/prices/import?name=bad.json", strings.NewReader(body))), http.StatusBadRequest, "invalid_prices")
		if strings.Contains(e.Error.Message, "\n") {
			t.Errorf("%s: got a multi-line message %q", name, e.Error.Message)
		}
	}
	big := `{"m": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "x": "` + strings.Repeat("a", maxPriceImport) + `"}}`
	assertError(t, serve(t, h, newRequest("POST", "/api/prices/import?name=big.json", strings.NewReader(big))), http.StatusRequestEntityTooLarge, "body_too_large")
	assertError(t, serve(t, h, newRequest("POST", "/api/prices/import", strings.NewReader(string(file)))), http.StatusBadRequest, "bad_request")
	if _, err := os.Stat(s.prices.file); err == nil || kinds() != "" {
		t.Fatalf("after refused imports: file %v, records %q; want nothing stored or recorded", err, kinds())
	}

	// The import is recorded, stored 0600, and prices the model.
	resp = serve(t, h, newRequest("POST", "/api/prices/import?name=litellm.json", strings.NewReader(string(file))))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("import: got %d %s, want 200", resp.StatusCode, readBody(t, resp))
	}
	fi, err := os.Stat(s.prices.file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored table: got %v, %v; want mode 0600", fi, err)
	}
	got := lookup()
	if !got.Known || got.Match.Layer != "imported" || got.Match.Input != 3 || got.Match.Output != 15 || !strings.Contains(got.Match.Source, "litellm.json") {
		t.Fatalf("after the import: got %+v, want 3/15 from the imported litellm.json", got.Match)
	}
	if k := kinds(); k != audit.KindPricesImport {
		t.Fatalf("records: got %q, want %s", k, audit.KindPricesImport)
	}

	// The list names the layers and filters by model.
	resp = serve(t, h, newRequest("GET", "/api/prices?model=claude-sonnet-4*&provider=anthropic", nil))
	var list api.PriceList
	if err := json.Unmarshal([]byte(readBody(t, resp)), &list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("list: got %d, %v; want 200", resp.StatusCode, err)
	}
	if len(list.Layers) != 2 || list.Layers[0].Layer != "imported" || list.Layers[1].Layer != "embedded" {
		t.Fatalf("layers: got %+v, want imported then embedded", list.Layers)
	}
	var models []string
	for _, e := range list.Prices {
		models = append(models, e.Model+"@"+e.Layer)
	}
	if want := "claude-sonnet-4-20250514@embedded claude-sonnet-4-5-20250929@imported"; strings.Join(models, " ") != want {
		t.Fatalf("list: got %v, want %s", models, want)
	}
	assertError(t, serve(t, h, newRequest("GET", "/api/prices?model=[", nil)), http.StatusBadRequest, "bad_filter")

	// Reset removes it, recorded; a second reset has nothing to do.
	for i, want := range []bool{true, false} {
		resp := serve(t, h, newRequest("DELETE", "/api/prices/import", nil))
		var r api.PricesReset
		if err := json.Unmarshal([]byte(readBody(t, resp)), &r); err != nil || resp.StatusCode != http.StatusOK || r.Removed != want {
			t.Fatalf("reset %d: got %d %+v, %v; want removed %v", i, resp.StatusCode, r, err, want)
		}
	}
	if lookup().Known {
		t.Fatal("after reset: the model is still priced, want unknown")
	}
	if k := kinds(); k != audit.KindPricesImport+" "+audit.KindPricesReset {
		t.Fatalf("records: got %q, want import then reset", k)
	}
}
