package provider

//go:generate go run ./internal/pricegen -out prices.json

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/privatefile"
)

// builtinPrices is the embedded price table, generated from the models.dev
// catalog (see internal/pricegen): one entry per provider and model.
//
//go:embed prices.json
var builtinPrices []byte

// Price is USD per million tokens. A cache price the source does not give
// is nil: those tokens are then priced as input tokens, which is what a
// provider without a cache discount charges.
type Price struct {
	Input      float64  `json:"input" toml:"input"`
	Output     float64  `json:"output" toml:"output"`
	CacheRead  *float64 `json:"cache_read,omitempty" toml:"cache_read"`
	CacheWrite *float64 `json:"cache_write,omitempty" toml:"cache_write"`
}

// cost prices tokens at p, in USD.
func (p Price) cost(input, output, cacheRead, cacheWrite int64) float64 {
	cr, cw := p.Input, p.Input
	if p.CacheRead != nil {
		cr = *p.CacheRead
	}
	if p.CacheWrite != nil {
		cw = *p.CacheWrite
	}
	return (float64(input)*p.Input + float64(output)*p.Output + float64(cacheRead)*cr + float64(cacheWrite)*cw) / 1e6
}

// PriceEntry is the price of one model at one provider. Provider is a
// provider id as Ringlet's catalog and models.dev name it (anthropic,
// openai, openrouter, ...).
type PriceEntry struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Price
}

// PriceTable is a price file: the embedded one, or one imported with
// 'ringlet prices import'. Source says where its prices come from.
type PriceTable struct {
	Source string `json:"source"`
	// Format is the format the prices were read from: modelsdev or litellm.
	Format string `json:"format"`
	// Integrity is the npm integrity of the package the embedded table
	// was generated from; SHA256 the digest of an imported file.
	Integrity string       `json:"integrity,omitempty"`
	SHA256    string       `json:"sha256,omitempty"`
	Imported  *time.Time   `json:"imported,omitempty"`
	Prices    []PriceEntry `json:"prices"`
}

// The layers of a price lookup, first match wins.
const (
	LayerConfig   = "config"   // prices.toml in the config directory
	LayerImported = "imported" // 'ringlet prices import'
	LayerEmbedded = "embedded" // built in
)

// layer is one price table, indexed.
type layer struct {
	name, source string
	// exact is the price of each (provider, model).
	exact map[[2]string]Price
	// providers are the providers the table lists.
	providers map[string]bool
	// anywhere is, for a model id, its price where every provider that
	// lists it agrees: what a provider the table does not know is priced
	// at (a user's own provider id in front of a known model).
	anywhere map[string]Price
	// prefix matches a model by its longest listed prefix: only the
	// user's prices.toml, whose keys name no provider, asks for that.
	prefix  bool
	entries []PriceEntry
}

func newLayer(name, source string, entries []PriceEntry, prefix bool) *layer {
	l := &layer{name: name, source: source, exact: map[[2]string]Price{}, providers: map[string]bool{},
		anywhere: map[string]Price{}, prefix: prefix, entries: entries}
	conflict := map[string]bool{}
	for _, e := range entries {
		l.exact[[2]string{e.Provider, e.Model}] = e.Price
		l.providers[e.Provider] = true
		if conflict[e.Model] {
			continue
		}
		if p, ok := l.anywhere[e.Model]; ok && !samePrice(p, e.Price) {
			delete(l.anywhere, e.Model)
			conflict[e.Model] = true
			continue
		}
		l.anywhere[e.Model] = e.Price
	}
	return l
}

func samePrice(a, b Price) bool {
	eq := func(x, y *float64) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return a.Input == b.Input && a.Output == b.Output && eq(a.CacheRead, b.CacheRead) && eq(a.CacheWrite, b.CacheWrite)
}

// lookup finds model at provider in this layer: the exact entry, else
// (for a provider the layer does not list) the price every listing of the
// model agrees on, else (prices.toml only) the longest prefix.
func (l *layer) lookup(provider, model string) (PriceEntry, bool) {
	if model == "" {
		return PriceEntry{}, false
	}
	if l.prefix {
		if p, ok := l.anywhere[model]; ok {
			return PriceEntry{Model: model, Price: p}, true
		}
		best := ""
		for k := range l.anywhere {
			if strings.HasPrefix(model, k) && len(k) > len(best) {
				best = k
			}
		}
		if best == "" {
			return PriceEntry{}, false
		}
		return PriceEntry{Model: best, Price: l.anywhere[best]}, true
	}
	if p, ok := l.exact[[2]string{provider, model}]; ok {
		return PriceEntry{Provider: provider, Model: model, Price: p}, true
	}
	if !l.providers[provider] {
		if p, ok := l.anywhere[model]; ok {
			return PriceEntry{Model: model, Price: p}, true
		}
	}
	return PriceEntry{}, false
}

// Prices is the price table Ringlet uses: the user's prices.toml over an
// imported table over the embedded one.
type Prices struct {
	layers []*layer
}

// Match is a price found for a request, and where it came from. Its
// Provider is empty when the price came from a table that does not name
// the request's provider (prices.toml, or a model every provider of a
// table prices alike).
type Match struct {
	PriceEntry
	Layer  string `json:"layer"`
	Source string `json:"source"`
}

// Lookup finds the price of model at provider.
func (p *Prices) Lookup(provider, model string) (Match, bool) {
	for _, l := range p.layers {
		if e, ok := l.lookup(provider, model); ok {
			return Match{PriceEntry: e, Layer: l.name, Source: l.source}, true
		}
	}
	return Match{}, false
}

// Cost prices a request's tokens; ok is false when the model's price is
// unknown.
func (p *Prices) Cost(provider, model string, input, output, cacheRead, cacheWrite int64) (float64, bool) {
	m, ok := p.Lookup(provider, model)
	if !ok {
		return 0, false
	}
	return m.cost(input, output, cacheRead, cacheWrite), true
}

// Listed is an entry of a price list, with its layer.
type Listed struct {
	PriceEntry
	Layer string `json:"layer"`
}

// Layers names each layer and its source, first match first.
func (p *Prices) Layers() [][2]string {
	out := make([][2]string, 0, len(p.layers))
	for _, l := range p.layers {
		out = append(out, [2]string{l.name, l.source})
	}
	return out
}

// List returns the entries in effect (an entry of an earlier layer hides
// the same provider and model of a later one), those whose model matches
// the glob (path.Match; "" is every model) and whose provider is provider
// ("" is every provider; entries of prices.toml name none and match every
// provider), sorted by provider and model.
func (p *Prices) List(glob, provider string) ([]Listed, error) {
	if glob != "" {
		if _, err := path.Match(glob, ""); err != nil {
			return nil, fmt.Errorf("invalid model pattern %q: %w", glob, err)
		}
	}
	seen := map[[2]string]bool{}
	var out []Listed
	for _, l := range p.layers {
		for _, e := range l.entries {
			k := [2]string{e.Provider, e.Model}
			if seen[k] {
				continue
			}
			seen[k] = true
			if provider != "" && e.Provider != "" && e.Provider != provider {
				continue
			}
			if glob != "" {
				if ok, _ := path.Match(glob, e.Model); !ok {
					continue
				}
			}
			out = append(out, Listed{PriceEntry: e, Layer: l.name})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Model < out[j].Model
	})
	return out, nil
}

var (
	builtinOnce  sync.Once
	builtinTable PriceTable
	builtinLayer *layer
)

// Builtin returns the embedded price table.
func Builtin() PriceTable {
	loadBuiltin()
	return builtinTable
}

func loadBuiltin() *layer {
	builtinOnce.Do(func() {
		t, err := decodeTable(builtinPrices)
		if err != nil {
			panic("provider: embedded price table: " + err.Error())
		}
		builtinTable = t
		builtinLayer = newLayer(LayerEmbedded, t.Source, t.Prices, false)
	})
	return builtinLayer
}

// decodeTable reads a price file Ringlet wrote, refusing unknown fields
// and prices that are not plausible.
func decodeTable(data []byte) (PriceTable, error) {
	var t PriceTable
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return PriceTable{}, err
	}
	if dec.More() {
		return PriceTable{}, errors.New("data after the price table")
	}
	for _, e := range t.Prices {
		if err := e.Validate(); err != nil {
			return PriceTable{}, err
		}
	}
	return t, nil
}

// priceFile is prices.toml in the config directory.
type priceFile struct {
	Models map[string]Price `toml:"models"`
}

// MaxImportedPrices bounds the price file LoadPrices reads from the data
// directory, as 'ringlet prices import' bounds what it stores.
const MaxImportedPrices = 32 << 20

// LoadPrices reads the price table in effect: configDir/prices.toml (if it
// exists) over the table imported at imported (if it exists) over the
// embedded one.
func LoadPrices(configDir, imported string) (*Prices, error) {
	p := &Prices{}
	path := filepath.Join(configDir, "prices.toml")
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		// A misspelt key would otherwise price those tokens at zero.
		var f priceFile
		dec := toml.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		entries := make([]PriceEntry, 0, len(f.Models))
		for m, pr := range f.Models {
			e := PriceEntry{Model: m, Price: pr}
			if err := e.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			entries = append(entries, e)
		}
		p.layers = append(p.layers, newLayer(LayerConfig, path, entries, true))
	}
	if imported != "" {
		t, ok, err := ReadImported(imported)
		if err != nil {
			return nil, err
		}
		if ok {
			p.layers = append(p.layers, newLayer(LayerImported, t.Source, t.Prices, false))
		}
	}
	p.layers = append(p.layers, loadBuiltin())
	return p, nil
}

// ReadImported reads the imported price table at path; ok is false when
// there is none.
func ReadImported(path string) (t PriceTable, ok bool, err error) {
	data, err := privatefile.Read(path, MaxImportedPrices)
	if errors.Is(err, fs.ErrNotExist) {
		return PriceTable{}, false, nil
	}
	if err != nil {
		return PriceTable{}, false, err
	}
	t, err = decodeTable(data)
	if err != nil {
		return PriceTable{}, false, fmt.Errorf("%s is not a valid price table (%v); import the prices again or remove it with 'ringlet prices reset'", path, err)
	}
	return t, true, nil
}

// Encode writes a price table one entry a line, so that a change of price
// is a one-line diff.
func (t PriceTable) Encode() ([]byte, error) {
	head := t
	head.Prices = nil
	h, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return nil, err
	}
	// Replace the closing "prices": null } with the entries.
	h = bytes.TrimSuffix(h, []byte("\n}"))
	h = bytes.TrimSuffix(h, []byte(`"prices": null`))
	var b bytes.Buffer
	b.Write(h)
	b.WriteString("\"prices\": [\n")
	for i, e := range t.Prices {
		line, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		b.WriteString("    ")
		b.Write(line)
		if i < len(t.Prices)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes(), nil
}
