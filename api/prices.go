package api

import "github.com/neullabs/ringlet/provider"

// PriceList is the answer to GET /api/prices: the layers of the price
// table in effect, first match first, and its entries.
type PriceList struct {
	Layers []PriceLayer      `json:"layers"`
	Prices []provider.Listed `json:"prices"`
}

// PriceLayer is one layer of the price table and where its prices come
// from.
type PriceLayer struct {
	Layer  string `json:"layer"`
	Source string `json:"source"`
}

// PriceLookup is the answer to GET /api/prices/lookup: the price of a
// model at a provider, as 'ringlet usage' applies it. Match is nil when
// the price is unknown.
type PriceLookup struct {
	Provider string          `json:"provider"`
	Model    string          `json:"model"`
	Known    bool            `json:"known"`
	Match    *provider.Match `json:"match,omitempty"`
}

// PricesImported is the answer to POST /api/prices/import: what the file
// held, and whether it was stored (not on a dry run).
type PricesImported struct {
	Format    string `json:"format"`
	Models    int    `json:"models"`
	Providers int    `json:"providers"`
	SHA256    string `json:"sha256"`
	Source    string `json:"source"`
	DryRun    bool   `json:"dry_run"`
}

// PricesReset is the answer to DELETE /api/prices/import.
type PricesReset struct {
	// Removed is false when no imported table was there.
	Removed bool `json:"removed"`
}
