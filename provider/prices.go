package provider

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2"
)

//go:embed prices.toml
var builtinPrices []byte

// Price is USD per million tokens.
type Price struct {
	Input      float64 `toml:"input"`
	Output     float64 `toml:"output"`
	CacheRead  float64 `toml:"cache_read"`
	CacheWrite float64 `toml:"cache_write"`
}

type priceFile struct {
	Models map[string]Price `toml:"models"`
}

var (
	pricesOnce sync.Once
	prices     map[string]Price
)

func loadPrices() map[string]Price {
	pricesOnce.Do(func() {
		var f priceFile
		if err := toml.Unmarshal(builtinPrices, &f); err != nil {
			panic("provider: built-in price table: " + err.Error())
		}
		prices = f.Models
	})
	return prices
}

// Cost prices a request's tokens; ok is false when the model is unknown.
// A model matches exactly, else by the longest known prefix (so
// claude-sonnet-4-5-20250929 is priced as claude-sonnet-4).
func Cost(model string, input, output, cacheRead, cacheWrite int64) (float64, bool) {
	return Prices(loadPrices()).Cost(model, input, output, cacheRead, cacheWrite)
}

func lookupPrice(table map[string]Price, model string) (Price, bool) {
	if p, ok := table[model]; ok {
		return p, true
	}
	best := ""
	for k := range table {
		if strings.HasPrefix(model, k) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return Price{}, false
	}
	return table[best], true
}

// Prices is a price table: the built-in one with the entries of
// prices.toml in a config directory on top.
type Prices map[string]Price

// LoadPrices reads dir/prices.toml (if it exists) over the built-in table.
func LoadPrices(dir string) (Prices, error) {
	out := Prices{}
	for k, v := range loadPrices() {
		out[k] = v
	}
	path := filepath.Join(dir, "prices.toml")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	// A misspelt key would otherwise price those tokens at zero.
	var f priceFile
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range f.Models {
		out[k] = v
	}
	return out, nil
}

// Cost prices tokens with this table, like the package-level Cost.
func (t Prices) Cost(model string, input, output, cacheRead, cacheWrite int64) (float64, bool) {
	p, ok := lookupPrice(t, model)
	if !ok {
		return 0, false
	}
	return (float64(input)*p.Input + float64(output)*p.Output + float64(cacheRead)*p.CacheRead + float64(cacheWrite)*p.CacheWrite) / 1e6, true
}
