package gateway

import (
	"context"
	"sync"

	"github.com/neullabs/ringlet/profile"
)

// profileSnap is one request's read of its profile. An MCP tool call
// needs the profile twice (the tool control's default, then the
// budgets), and each read re-validated the store's cached profile by a
// stat of its file. Within one request the first read serves both; a
// change made by hand is still seen at the next request, which takes a
// snapshot of its own.
type profileSnap struct {
	alias string
	once  sync.Once
	p     profile.Profile
	err   error
}

type profileSnapKey struct{}

// withProfileSnap gives ctx's request one read of alias's profile.
func withProfileSnap(ctx context.Context, alias string) context.Context {
	return context.WithValue(ctx, profileSnapKey{}, &profileSnap{alias: alias})
}

// profileNow is alias's profile as its file says now: the request's
// snapshot when ctx has one of alias, else read from profiles. What it
// returns is shared with the request's other readers: read it, do not
// change it.
func profileNow(ctx context.Context, profiles *profile.Store, alias string) (profile.Profile, error) {
	s, ok := ctx.Value(profileSnapKey{}).(*profileSnap)
	if !ok || s.alias != alias {
		return profiles.Get(alias)
	}
	s.once.Do(func() { s.p, s.err = profiles.Get(alias) })
	return s.p, s.err
}
