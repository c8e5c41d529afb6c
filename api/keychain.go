package api

import "github.com/neullabs/ringlet/credentials"

// KeychainList is the answer to GET /api/keychain: every stored key's
// entry, never a key.
type KeychainList struct {
	Entries []credentials.Entry `json:"entries"`
}

// KeySet is the body of PUT /api/keychain/{provider}/{alias}.
type KeySet struct {
	Key string `json:"key"`
}

// KeychainChange is the answer to a stored or removed key: the entry, and
// how many live sessions held the old key and were ended.
type KeychainChange struct {
	credentials.Entry
	SessionsEnded int `json:"sessions_ended"`
}

// KeychainMigrate is the body of POST /api/keychain/migrate: move every
// stored key to the backend To (file or keyring).
type KeychainMigrate struct {
	To string `json:"to"`
}

// KeychainMigrated is the answer to POST /api/keychain/migrate: what
// happened to each key, in the order of the index.
type KeychainMigrated struct {
	Results []credentials.MigrateResult `json:"results"`
}
