package auditlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/privatefile"
)

// ErrNoEpochNeeded means the database matches its anchor: there is nothing
// for a new epoch to accept.
var ErrNoEpochNeeded = errors.New("the audit log matches its anchor; no new epoch is needed")

// NewEpoch accepts, on purpose, a database that does not match its anchor
// (restored from a backup, moved, deleted, or its anchor lost): it appends
// an audit.epoch record that says what was found and why it was accepted,
// chained to whatever the database holds (a deleted one starts afresh),
// and anchors it, naming the epoch in the anchor file too so that verify
// lists it. No other writer may have the database open.
func NewEpoch(ctx context.Context, opts Options, reason, actor string) (audit.Record, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return audit.Record{}, errors.New("a new epoch needs a reason")
	}
	old, anchored, err := audit.ReadAnchor(opts.Path)
	if err != nil && !errors.Is(err, audit.ErrNotAnchor) {
		return audit.Record{}, err
	}
	garbled := err != nil
	_, statErr := os.Stat(opts.Path)
	l, err := open(opts, true)
	if err != nil {
		return audit.Record{}, err
	}
	// The record is committed by Append; closing adds nothing to it.
	defer func() { _ = l.Close() }()
	tip := l.lastSeq
	problem, _, err := audit.AnchorProblem(opts.Path, old, anchored, statErr == nil, tip, l.recordHash)
	if err != nil {
		return audit.Record{}, fmt.Errorf("read audit log %s: %w", opts.Path, audit.Describe(err))
	}
	if garbled {
		problem = fmt.Sprintf("its anchor file %s could not be read", audit.AnchorPath(opts.Path))
	}
	if problem == "" {
		return audit.Record{}, ErrNoEpochNeeded
	}
	// Earlier epochs stay named only if the database still holds them.
	var keep []audit.Epoch
	for _, e := range old.Epochs {
		if h, err := l.recordHash(e.Seq); err == nil && h == e.Hash {
			keep = append(keep, e)
		}
	}
	r, err := l.Append(ctx, audit.Record{Kind: audit.KindAuditEpoch, Actor: actor, Target: opts.Path, Decision: audit.Allow,
		Detail: audit.DetailJSON(audit.EpochDetail{Reason: reason, Found: problem, PreviousAnchorSeq: old.Seq, PreviousAnchorHash: old.Hash, DatabaseLastSeq: tip})})
	if err != nil {
		return audit.Record{}, err
	}
	a := audit.Anchor{Seq: r.Seq, Hash: r.Hash, Epochs: append(keep, audit.Epoch{Seq: r.Seq, Hash: r.Hash})}
	if err := privatefile.WriteAtomic(audit.AnchorPath(opts.Path), a.Encode(), privatefile.FileMode); err != nil {
		return audit.Record{}, fmt.Errorf("write audit anchor: %w", err)
	}
	return r, nil
}
