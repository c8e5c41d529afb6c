package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/neullabs/ringlet/internal/strictjson"
)

// Price file formats 'ringlet prices import' reads.
const (
	// PriceFormatModelsDev is models.dev's api.json: providers by id, each
	// with its models and their cost in USD per million tokens.
	PriceFormatModelsDev = "modelsdev"
	// PriceFormatLiteLLM is LiteLLM's model_prices_and_context_window.json:
	// models by name, with litellm_provider and costs in USD per token.
	PriceFormatLiteLLM = "litellm"
)

// Bounds of what a price file may hold.
const (
	// MaxPrice is the highest price accepted, USD per million tokens: a
	// hundred times the dearest model listed anywhere, so that a unit
	// mistake (per token for per million) is refused, not believed.
	MaxPrice = 10_000
	// maxPriceEntries bounds the entries of one file.
	maxPriceEntries = 200_000
	maxIDLen        = 256
)

// Validate refuses an entry whose names or prices are not plausible.
func (e PriceEntry) Validate() error {
	if err := checkID("model", e.Model); err != nil {
		return err
	}
	if e.Provider != "" {
		if err := checkID("provider", e.Provider); err != nil {
			return fmt.Errorf("model %q: %w", e.Model, err)
		}
	}
	for _, c := range []struct {
		name string
		v    *float64
	}{{"input", &e.Input}, {"output", &e.Output}, {"cache_read", e.CacheRead}, {"cache_write", e.CacheWrite}} {
		if c.v == nil {
			continue
		}
		if err := checkPrice(*c.v); err != nil {
			return fmt.Errorf("model %q of provider %q: %s price %w", e.Model, e.Provider, c.name, err)
		}
	}
	return nil
}

func checkPrice(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return errors.New("is not a number")
	case v < 0:
		return fmt.Errorf("%v is negative", v)
	case v > MaxPrice:
		return fmt.Errorf("%v USD per million tokens is more than %d (a price per token given as per million?)", v, MaxPrice)
	}
	return nil
}

func checkID(what, s string) error {
	if s == "" {
		return fmt.Errorf("a %s has no name", what)
	}
	if len(s) > maxIDLen {
		return fmt.Errorf("a %s name is longer than %d bytes", what, maxIDLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s name %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s name %q holds a character that is not printable", what, s)
		}
	}
	return nil
}

// CheckFileName refuses a price file's name that cannot be shown as it is
// in the audit log and the table's source.
func CheckFileName(name string) error {
	if name == "" || name == "." || name == "/" {
		return errors.New("name the price file (?name=)")
	}
	return checkID("file", name)
}

// ParsePriceFile reads a price file in either format, which it detects:
// models.dev's api.json or LiteLLM's model map. It refuses the whole file
// at the first implausible entry, with an error that names it; entries
// without a price per token (images, audio by the second) are left out.
func ParsePriceFile(data []byte) (PriceTable, error) {
	if !json.Valid(data) {
		return PriceTable{}, errors.New("the file is not valid JSON")
	}
	// A key twice would be read one way here and another elsewhere.
	if err := strictjson.Check(data); err != nil {
		return PriceTable{}, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return PriceTable{}, errors.New("the file is not a JSON object: want LiteLLM's model_prices_and_context_window.json or models.dev's api.json")
	}
	var modelsDev, liteLLM bool
	for _, v := range top {
		var probe struct {
			Models   json.RawMessage `json:"models"`
			Provider json.RawMessage `json:"litellm_provider"`
			In       json.RawMessage `json:"input_cost_per_token"`
		}
		if json.Unmarshal(v, &probe) != nil {
			continue
		}
		modelsDev = modelsDev || probe.Models != nil
		liteLLM = liteLLM || probe.Provider != nil || probe.In != nil
	}
	format := ""
	switch {
	case modelsDev && liteLLM:
		return PriceTable{}, errors.New("the file mixes models.dev's and LiteLLM's formats: import one or the other")
	case modelsDev:
		format = PriceFormatModelsDev
	case liteLLM:
		format = PriceFormatLiteLLM
	}
	var entries []PriceEntry
	var err error
	switch format {
	case PriceFormatModelsDev:
		entries, err = parseModelsDev(top)
	case PriceFormatLiteLLM:
		entries, err = parseLiteLLM(top)
	default:
		return PriceTable{}, errors.New("the file is in no known price format: want LiteLLM's model_prices_and_context_window.json or models.dev's api.json")
	}
	if err != nil {
		return PriceTable{}, err
	}
	if len(entries) == 0 {
		return PriceTable{}, errors.New("the file prices no model")
	}
	if len(entries) > maxPriceEntries {
		return PriceTable{}, fmt.Errorf("the file prices %d models, more than %d", len(entries), maxPriceEntries)
	}
	sortEntries(entries)
	return PriceTable{Format: format, Prices: entries}, nil
}

func sortEntries(entries []PriceEntry) {
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Provider != entries[j].Provider {
			return entries[i].Provider < entries[j].Provider
		}
		return entries[i].Model < entries[j].Model
	})
}

// ParseModelsDev reads models.dev's api.json (the catalog the embedded
// table is generated from).
func ParseModelsDev(data []byte) ([]PriceEntry, error) {
	t, err := ParsePriceFile(data)
	if err != nil {
		return nil, err
	}
	if t.Format != PriceFormatModelsDev {
		return nil, errors.New("the file is not in models.dev's api.json format")
	}
	return t.Prices, nil
}

// number is a JSON number or null; anything else is refused.
type number struct {
	v   float64
	set bool
}

func (n *number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] == '"' {
		return fmt.Errorf("%s is not a number", b)
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("%s is not a number", b)
	}
	n.v, n.set = v, true
	return nil
}

func parseModelsDev(top map[string]json.RawMessage) ([]PriceEntry, error) {
	var out []PriceEntry
	for pid, raw := range top {
		var prov struct {
			ID     string                     `json:"id"`
			Models map[string]json.RawMessage `json:"models"`
		}
		if err := json.Unmarshal(raw, &prov); err != nil {
			return nil, fmt.Errorf("provider %q: %v", pid, err)
		}
		if prov.ID != "" && prov.ID != pid {
			return nil, fmt.Errorf("provider %q names itself %q", pid, prov.ID)
		}
		for mid, mraw := range prov.Models {
			var m struct {
				ID   string `json:"id"`
				Cost *struct {
					Input      number `json:"input"`
					Output     number `json:"output"`
					CacheRead  number `json:"cache_read"`
					CacheWrite number `json:"cache_write"`
				} `json:"cost"`
			}
			if err := json.Unmarshal(mraw, &m); err != nil {
				return nil, fmt.Errorf("model %q of provider %q: %v", mid, pid, err)
			}
			if m.ID != "" && m.ID != mid {
				return nil, fmt.Errorf("model %q of provider %q names itself %q", mid, pid, m.ID)
			}
			if m.Cost == nil || !m.Cost.Input.set && !m.Cost.Output.set {
				continue
			}
			e := PriceEntry{Provider: pid, Model: mid, Price: Price{Input: m.Cost.Input.v, Output: m.Cost.Output.v}}
			if m.Cost.CacheRead.set {
				e.CacheRead = ptr(m.Cost.CacheRead.v)
			}
			if m.Cost.CacheWrite.set {
				e.CacheWrite = ptr(m.Cost.CacheWrite.v)
			}
			if err := e.Validate(); err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func parseLiteLLM(top map[string]json.RawMessage) ([]PriceEntry, error) {
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type found struct {
		e        PriceEntry
		prefixed bool
	}
	byKey := map[[2]string]found{}
	for _, k := range keys {
		if k == "sample_spec" { // LiteLLM's documentation of the format
			continue
		}
		var m struct {
			Provider   string `json:"litellm_provider"`
			Input      number `json:"input_cost_per_token"`
			Output     number `json:"output_cost_per_token"`
			CacheRead  number `json:"cache_read_input_token_cost"`
			CacheWrite number `json:"cache_creation_input_token_cost"`
		}
		if err := json.Unmarshal(top[k], &m); err != nil {
			return nil, fmt.Errorf("model %q: %v", k, err)
		}
		if !m.Input.set && !m.Output.set {
			continue
		}
		if m.Provider == "" {
			return nil, fmt.Errorf("model %q has no litellm_provider", k)
		}
		// LiteLLM names a model by provider/model where the provider's
		// own id would clash ("openrouter/anthropic/claude-3.5-sonnet"):
		// the model is what the provider calls it.
		model, prefixed := strings.CutPrefix(k, m.Provider+"/")
		e := PriceEntry{Provider: m.Provider, Model: model, Price: Price{Input: perMillion(m.Input.v), Output: perMillion(m.Output.v)}}
		if m.CacheRead.set {
			e.CacheRead = ptr(perMillion(m.CacheRead.v))
		}
		if m.CacheWrite.set {
			e.CacheWrite = ptr(perMillion(m.CacheWrite.v))
		}
		if err := e.Validate(); err != nil {
			return nil, err
		}
		key := [2]string{e.Provider, e.Model}
		if old, ok := byKey[key]; ok && !old.prefixed {
			continue // the unprefixed name is the provider's own
		}
		byKey[key] = found{e, prefixed}
	}
	out := make([]PriceEntry, 0, len(byKey))
	for _, f := range byKey {
		out = append(out, f.e)
	}
	return out, nil
}

// perMillion turns a price per token into one per million tokens, rounded
// to 12 significant digits so that 3e-06 is 3, not 2.9999999999999996.
func perMillion(v float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(v*1e6, 'g', 12, 64), 64)
	if err != nil {
		return v * 1e6
	}
	return r
}

func ptr(v float64) *float64 { return &v }

// Summary is what a price table holds: how many models of how many
// providers.
func (t PriceTable) Summary() (models, providers int) {
	seen := map[string]bool{}
	for _, e := range t.Prices {
		seen[e.Provider] = true
	}
	return len(t.Prices), len(seen)
}
