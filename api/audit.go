package api

import "github.com/neullabs/ringlet/audit"

// AuditPage is the answer to GET /api/audit: records newest first, and
// the cursor of the next page (null on the last).
type AuditPage struct {
	NextCursor *string        `json:"next_cursor"`
	Records    []audit.Record `json:"records"`
}

// Usage is the answer to GET /api/usage.
type Usage struct {
	By   string           `json:"by"`
	Rows []audit.UsageRow `json:"rows"`
}

// Event is one message on the /api/events stream: an audit record as it
// was committed (or, with the audit log off, as it happened).
type Event = audit.Record
