package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/provider"
)

// maxPriceImport bounds an imported price file: LiteLLM's whole model map
// is a few MiB.
const maxPriceImport = provider.MaxImportedPrices

// prices answers /api/prices: the price table in effect (prices.toml in
// catalogDir over the table imported at file over the embedded one), and
// the import and removal of the imported table.
type prices struct {
	catalogDir, file string
	rec              *recorder
	log              *slog.Logger
}

func (pg *prices) load(w http.ResponseWriter) (*provider.Prices, bool) {
	p, err := provider.LoadPrices(pg.catalogDir, pg.file)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "bad_prices", err.Error())
		return nil, false
	}
	return p, true
}

func (pg *prices) handleList(w http.ResponseWriter, r *http.Request) {
	p, ok := pg.load(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	list, err := p.List(q.Get("model"), q.Get("provider"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	out := api.PriceList{Layers: []api.PriceLayer{}, Prices: list}
	if out.Prices == nil {
		out.Prices = []provider.Listed{}
	}
	for _, l := range p.Layers() {
		out.Layers = append(out.Layers, api.PriceLayer{Layer: l[0], Source: l[1]})
	}
	writeJSON(w, http.StatusOK, out)
}

func (pg *prices) handleLookup(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	model, prov := q.Get("model"), q.Get("provider")
	if model == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "name a model: ?model=")
		return
	}
	p, ok := pg.load(w)
	if !ok {
		return
	}
	out := api.PriceLookup{Provider: prov, Model: model}
	if m, ok := p.Lookup(prov, model); ok {
		out.Known, out.Match = true, &m
	}
	writeJSON(w, http.StatusOK, out)
}

// handleImport reads a price file (the request body, as the user's file
// holds it), checks it whole and, unless ?dry_run=true, records the import
// and stores it as the imported table.
func (pg *prices) handleImport(w http.ResponseWriter, r *http.Request) {
	dryRun := r.URL.Query().Get("dry_run") == "true"
	name := filepath.Base(r.URL.Query().Get("name"))
	if err := provider.CheckFileName(name); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the price file is larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "read the price file: "+err.Error())
		return
	}
	t, err := provider.ParsePriceFile(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_prices", err.Error())
		return
	}
	sum := sha256.Sum256(data)
	now := time.Now().UTC().Truncate(time.Second)
	t.SHA256 = hex.EncodeToString(sum[:])
	t.Imported = &now
	what := map[string]string{provider.PriceFormatLiteLLM: "LiteLLM model map", provider.PriceFormatModelsDev: "models.dev api.json"}[t.Format]
	t.Source = fmt.Sprintf("%s %s (sha256 %s), imported %s", what, name, t.SHA256[:12], now.Format(time.RFC3339))
	models, provs := t.Summary()
	out := api.PricesImported{Format: t.Format, Models: models, Providers: provs, SHA256: t.SHA256, Source: t.Source, DryRun: dryRun}
	if dryRun {
		writeJSON(w, http.StatusOK, out)
		return
	}
	enc, err := t.Encode()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	if !pg.rec.recordOr503(w, r, audit.Record{Kind: audit.KindPricesImport, Actor: audit.ActorAdmin, Target: name, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"format": t.Format, "models": models, "providers": provs, "sha256": t.SHA256})}) {
		return
	}
	if err := privatefile.EnsureDir(filepath.Dir(pg.file)); err != nil {
		writeError(w, http.StatusInternalServerError, "write_failed", err.Error())
		return
	}
	if err := privatefile.WriteAtomic(pg.file, enc, privatefile.FileMode); err != nil {
		writeError(w, http.StatusInternalServerError, "write_failed", err.Error())
		return
	}
	pg.log.Info("prices imported", "format", t.Format, "models", models, "sha256", t.SHA256)
	writeJSON(w, http.StatusOK, out)
}

// handleReset removes the imported table: the embedded one applies again.
func (pg *prices) handleReset(w http.ResponseWriter, r *http.Request) {
	if _, err := os.Lstat(pg.file); errors.Is(err, fs.ErrNotExist) {
		writeJSON(w, http.StatusOK, api.PricesReset{})
		return
	}
	if !pg.rec.recordOr503(w, r, audit.Record{Kind: audit.KindPricesReset, Actor: audit.ActorAdmin, Target: filepath.Base(pg.file), Decision: audit.Allow}) {
		return
	}
	if err := os.Remove(pg.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusInternalServerError, "write_failed", strings.TrimSpace(err.Error()))
		return
	}
	pg.log.Info("imported prices removed")
	writeJSON(w, http.StatusOK, api.PricesReset{Removed: true})
}
