package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Logins.
const (
	// CodeTTL is how long a login code may be exchanged: long enough
	// for a browser to open, short enough that a code seen later (in a
	// process list, a shell history) is worthless.
	CodeTTL = 60 * time.Second
	// IdleTTL ends a login no request renewed for that long.
	IdleTTL = 30 * time.Minute
	// MaxTTL ends a login that long after it began, whatever its use.
	MaxTTL = 12 * time.Hour
	// maxCodes bounds the codes waiting to be exchanged and maxLogins
	// the live logins: past them the oldest go.
	maxCodes  = 16
	maxLogins = 64
)

// CodePrefix and CookiePrefix begin every login code and login cookie, so
// neither can be mistaken for the other or for a token of the API.
const (
	CodePrefix   = "rlc_"
	CookiePrefix = "rlu_"
	// KeyPrefix begins every page key.
	KeyPrefix = "rlk_"
	// KeyHeader carries a login's page key on every request for data.
	KeyHeader = "X-Ringlet-UI"
)

// CookieName is the login cookie's name on the daemon of port: two
// daemons of one machine (ports differ) keep their logins apart, since a
// browser does not tell cookies apart by port.
func CookieName(port int) string { return "ringlet_ui_" + strconv.Itoa(port) }

// ErrBadCode is Exchange's answer to a code that is unknown, used or
// expired: the three are not told apart.
var ErrBadCode = errors.New("this login link is not valid (used or expired); run 'ringlet ui' again")

// Logins are the dashboard's login codes and the logins they became. Only
// SHA-256 hashes of codes and cookies are held: what is in memory cannot
// be replayed. The zero value is not usable; use NewLogins.
type Logins struct {
	now func() time.Time

	mu     sync.Mutex
	codes  map[[32]byte]*pending // by hash of a code, until it expires
	logins map[[32]byte]*Login
}

// pending is a login code: when it expires, and done, closed when it is
// used (it stays, used, until it expires, so Wait can tell).
type pending struct {
	exp  time.Time
	used bool
	done chan struct{}
}

// Login is one browser's login: a cookie and a page key, valid until it
// idles out, its absolute expiry passes, it logs out, or the admin token
// is rotated.
//
// The cookie alone opens only the pages' shells, which carry no data:
// a browser sends it to every server of 127.0.0.1 whatever the port, so
// any listener of this machine the user browses gets it. The page key
// is what opens data and changes. It is answered to the login's script,
// which keeps it in sessionStorage (kept apart per origin, port
// included) and sends it in KeyHeader; no other origin can read it.
type Login struct {
	created  time.Time
	lastUsed time.Time
	// key is the SHA-256 hash of the page key.
	key [32]byte
	// ctx ends with the login: a stream it opened closes.
	ctx    context.Context
	cancel context.CancelFunc
	// idle ends the login when its idle expiry passes, so that a stream
	// it opened (a terminal) closes then, not only at the next Check.
	idle *time.Timer
}

// Context ends when the login ends (logout, rotation, idle or absolute
// expiry).
func (l *Login) Context() context.Context { return l.ctx }

// NewLogins returns an empty set of logins on clock now (time.Now when
// nil).
func NewLogins(now func() time.Time) *Logins {
	if now == nil {
		now = time.Now
	}
	return &Logins{now: now, codes: map[[32]byte]*pending{}, logins: map[[32]byte]*Login{}}
}

// NewCode returns a one-time login code and when it expires.
func (ls *Logins) NewCode() (string, time.Time) {
	code := CodePrefix + random()
	now := ls.now()
	exp := now.Add(CodeTTL)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.pruneLocked(now)
	if len(ls.codes) >= maxCodes {
		var oldest [32]byte
		first := true
		for h, p := range ls.codes {
			if first || p.exp.Before(ls.codes[oldest].exp) {
				oldest, first = h, false
			}
		}
		delete(ls.codes, oldest)
	}
	ls.codes[sha256.Sum256([]byte(code))] = &pending{exp: exp, done: make(chan struct{})}
	return code, exp
}

// Wait waits until code is used (true) or expires, is forgotten or ctx
// ends (false): 'ringlet ui' removes the file that carried it then.
func (ls *Logins) Wait(ctx context.Context, code string) bool {
	ls.mu.Lock()
	p := ls.codes[sha256.Sum256([]byte(code))]
	ls.mu.Unlock()
	if p == nil {
		return false
	}
	t := time.NewTimer(p.exp.Sub(ls.now()))
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return p.used
}

// Exchange spends code, once, for a new login: it returns the login's
// cookie value, its page key and its absolute expiry.
func (ls *Logins) Exchange(code string) (cookie, key string, end time.Time, err error) {
	if !strings.HasPrefix(code, CodePrefix) {
		return "", "", time.Time{}, ErrBadCode
	}
	h := sha256.Sum256([]byte(code))
	now := ls.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	p, ok := ls.codes[h]
	if !ok || p.used || !now.Before(p.exp) {
		return "", "", time.Time{}, ErrBadCode
	}
	p.used = true
	close(p.done)
	ls.pruneLocked(now)
	if len(ls.logins) >= maxLogins {
		var oldest [32]byte
		var first *Login
		for k, l := range ls.logins {
			if first == nil || l.created.Before(first.created) {
				oldest, first = k, l
			}
		}
		first.cancel()
		delete(ls.logins, oldest)
	}
	cookie, key = CookiePrefix+random(), KeyPrefix+random()
	end = now.Add(MaxTTL)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	ch := sha256.Sum256([]byte(cookie))
	l := &Login{created: now, lastUsed: now, key: sha256.Sum256([]byte(key)), ctx: ctx, cancel: cancel}
	// Set under ls.mu, which idleOut takes first.
	l.idle = time.AfterFunc(IdleTTL, func() { ls.idleOut(ch) })
	ls.logins[ch] = l
	return cookie, key, end, nil
}

// idleOut ends the login of cookie hash h if its idle expiry has passed
// on ls's clock, and else waits for the expiry again.
func (ls *Logins) idleOut(h [32]byte) {
	now := ls.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.logins[h]
	if !ok {
		return
	}
	if l.expired(now) {
		l.cancel()
		delete(ls.logins, h)
		return
	}
	l.idle.Reset(max(l.lastUsed.Add(IdleTTL).Sub(now), time.Second))
}

// Touch renews the idle expiry of l, a live login whose page key came
// with the stream it keeps using (a terminal's input), and reports
// whether l is still live.
func (ls *Logins) Touch(l *Login) bool {
	now := ls.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l.ctx.Err() != nil || l.expired(now) {
		return false
	}
	l.lastUsed = now
	return true
}

// keyed reports whether key is the login's page key, in constant time.
func (l *Login) keyed(key string) bool {
	h := sha256.Sum256([]byte(key))
	return strings.HasPrefix(key, KeyPrefix) && subtle.ConstantTimeCompare(h[:], l.key[:]) == 1
}

// Check returns the live login of cookie and whether key is its page
// key. Only a use with the key renews its idle expiry: the cookie alone,
// replayed by whichever server received it, does not keep a login alive.
func (ls *Logins) Check(cookie, key string) (l *Login, keyed, ok bool) {
	if !strings.HasPrefix(cookie, CookiePrefix) {
		return nil, false, false
	}
	h := sha256.Sum256([]byte(cookie))
	now := ls.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok = ls.logins[h]
	if !ok {
		return nil, false, false
	}
	if l.expired(now) {
		l.cancel()
		delete(ls.logins, h)
		return nil, false, false
	}
	if keyed = l.keyed(key); keyed {
		l.lastUsed = now
	}
	return l, keyed, true
}

// End ends the login of cookie (logout).
func (ls *Logins) End(cookie string) {
	h := sha256.Sum256([]byte(cookie))
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.logins[h]; ok {
		l.cancel()
		delete(ls.logins, h)
	}
}

// EndAll ends every login and forgets every code: the admin token was
// rotated, and what it let in goes with it.
func (ls *Logins) EndAll() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for h, l := range ls.logins {
		l.cancel()
		delete(ls.logins, h)
	}
	clear(ls.codes)
}

// Live is the number of live logins.
func (ls *Logins) Live() int {
	now := ls.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.pruneLocked(now)
	return len(ls.logins)
}

func (l *Login) expired(now time.Time) bool {
	return !now.Before(l.lastUsed.Add(IdleTTL)) || !now.Before(l.created.Add(MaxTTL))
}

func (ls *Logins) pruneLocked(now time.Time) {
	for h, p := range ls.codes {
		if !now.Before(p.exp) {
			delete(ls.codes, h)
		}
	}
	for h, l := range ls.logins {
		if l.expired(now) {
			l.cancel()
			delete(ls.logins, h)
		}
	}
}

// random is 32 bytes from crypto/rand, base64url.
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
