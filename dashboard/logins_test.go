package dashboard

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLogins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// run acts on a fresh set, with a code just issued; it returns
		// the error of the exchange and whether the login then checks.
		run  func(ls *Logins, c *clock, code string) (error, bool)
		want error
		live bool
	}{
		{"fresh code", func(ls *Logins, _ *clock, code string) (error, bool) { return exchange(ls, code) }, nil, true},
		{"code used twice", func(ls *Logins, _ *clock, code string) (error, bool) {
			_, _, _, _ = ls.Exchange(code)
			return exchange(ls, code)
		}, ErrBadCode, false},
		{"code expired", func(ls *Logins, c *clock, code string) (error, bool) {
			c.advance(CodeTTL)
			return exchange(ls, code)
		}, ErrBadCode, false},
		{"code just before expiry", func(ls *Logins, c *clock, code string) (error, bool) {
			c.advance(CodeTTL - time.Second)
			return exchange(ls, code)
		}, nil, true},
		{"forged code", func(ls *Logins, _ *clock, _ string) (error, bool) { return exchange(ls, CodePrefix+"forged") }, ErrBadCode, false},
		{"a cookie is no code", func(ls *Logins, _ *clock, code string) (error, bool) {
			cookie, _, _, _ := ls.Exchange(code)
			return exchange(ls, cookie)
		}, ErrBadCode, false},
		{"rotation forgets codes", func(ls *Logins, _ *clock, code string) (error, bool) {
			ls.EndAll()
			return exchange(ls, code)
		}, ErrBadCode, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: time.Unix(1_800_000_000, 0)}
			ls := NewLogins(c.now)
			code, exp := ls.NewCode()
			if !strings.HasPrefix(code, CodePrefix) || !exp.Equal(c.t.Add(CodeTTL)) {
				t.Fatalf("NewCode: got %q expiring %v, want the prefix and %v", code, exp, c.t.Add(CodeTTL))
			}
			err, live := tc.run(ls, c, code)
			if !errors.Is(err, tc.want) || live != tc.live {
				t.Errorf("got err %v, live %v; want err %v, live %v", err, live, tc.want, tc.live)
			}
		})
	}
}

func exchange(ls *Logins, code string) (error, bool) {
	cookie, _, _, err := ls.Exchange(code)
	if err != nil {
		return err, false
	}
	_, _, ok := ls.Check(cookie, "")
	return nil, ok
}

// TestLoginCookieAloneDoesNotRenew: a login used by its cookie without
// its key (replayed by a server that received the cookie) is not kept
// alive: it idles out as if unused.
func TestLoginCookieAloneDoesNotRenew(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	ls := NewLogins(c.now)
	code, _ := ls.NewCode()
	cookie, key, _, err := ls.Exchange(code)
	if err != nil {
		t.Fatal(err)
	}
	c.advance(IdleTTL - 10*time.Minute)
	if _, keyed, ok := ls.Check(cookie, ""); keyed || !ok {
		t.Fatalf("the cookie alone: got keyed %v, live %v; want unkeyed and live", keyed, ok)
	}
	c.advance(15 * time.Minute)
	if _, _, ok := ls.Check(cookie, key); ok {
		t.Errorf("a login used only by its cookie for %v still checks, want it idled out", IdleTTL+5*time.Minute)
	}
}

func TestLoginExpiry(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	ls := NewLogins(c.now)
	keys := map[string]string{}
	login := func() string {
		code, _ := ls.NewCode()
		cookie, key, _, err := ls.Exchange(code)
		if err != nil {
			t.Fatal(err)
		}
		keys[cookie] = key
		return cookie
	}
	check := func(cookie string) (*Login, bool) {
		l, _, ok := ls.Check(cookie, keys[cookie])
		return l, ok
	}
	idle, busy, out := login(), login(), login()
	l, _ := check(out)
	ls.End(out)
	if _, ok := check(out); ok || l.Context().Err() == nil {
		t.Error("a logged-out cookie still checks, or its context runs")
	}
	// busy is used every 20 minutes; idle not.
	for elapsed := time.Duration(0); elapsed < MaxTTL-20*time.Minute; elapsed += 20 * time.Minute {
		c.advance(20 * time.Minute)
		if _, ok := check(busy); !ok {
			t.Fatalf("a login used every 20 minutes ended after %v, want it to last %v", elapsed+20*time.Minute, MaxTTL)
		}
	}
	if _, ok := check(idle); ok {
		t.Errorf("a login idle for %v still checks", IdleTTL)
	}
	c.advance(20 * time.Minute)
	if _, ok := check(busy); ok {
		t.Errorf("a login past its absolute expiry (%v) still checks", MaxTTL)
	}
	b := login()
	bl, _ := check(b)
	ls.EndAll()
	if _, ok := check(b); ok || bl.Context().Err() == nil {
		t.Error("EndAll left a login")
	}
	if _, ok := check("rlu_" + strings.Repeat("A", 43)); ok {
		t.Error("a made-up cookie checks")
	}
}

// TestLoginKey: a login's page key is its own: another login's key, the
// cookie, a made-up key and none are not it.
func TestLoginKey(t *testing.T) {
	t.Parallel()
	ls := NewLogins(nil)
	code, _ := ls.NewCode()
	cookie, key, _, err := ls.Exchange(code)
	if err != nil {
		t.Fatal(err)
	}
	code, _ = ls.NewCode()
	_, other, _, err := ls.Exchange(code)
	if err != nil {
		t.Fatal(err)
	}
	if _, keyed, ok := ls.Check(cookie, key); !strings.HasPrefix(key, KeyPrefix) || !keyed || !ok {
		t.Errorf("its own key %q: want it to open the login", key)
	}
	for _, bad := range []string{other, cookie, "", KeyPrefix, KeyPrefix + "x", strings.TrimPrefix(key, KeyPrefix)} {
		if _, keyed, ok := ls.Check(cookie, bad); keyed || !ok {
			t.Errorf("key %q: want it refused", bad)
		}
	}
}

// TestCodeWait: Wait answers true once the code is used (before or while
// it waits), false for a code that expires unused or was never issued.
func TestCodeWait(t *testing.T) {
	t.Parallel()
	ls := NewLogins(nil)
	if ls.Wait(t.Context(), CodePrefix+"never-issued") {
		t.Error("a code never issued: got used")
	}
	used, _ := ls.NewCode()
	if _, _, _, err := ls.Exchange(used); err != nil {
		t.Fatal(err)
	}
	if !ls.Wait(t.Context(), used) {
		t.Error("a code used before the wait: got unused")
	}
	waiting, _ := ls.NewCode()
	got := make(chan bool)
	go func() { got <- ls.Wait(t.Context(), waiting) }()
	if _, _, _, err := ls.Exchange(waiting); err != nil {
		t.Fatal(err)
	}
	if !<-got {
		t.Error("a code used during the wait: got unused")
	}
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	expiring := NewLogins(c.now)
	code, exp := expiring.NewCode()
	c.t = exp // the wait's timer is due at once on this clock
	if expiring.Wait(t.Context(), code) {
		t.Error("an expired code: got used")
	}
}

// TestLoginIdleEndsStreams: a login's context ends when its idle expiry
// passes, without another request to notice (a terminal it opened closes
// then), and a stream's own use (Touch: a terminal's input) renews it.
func TestLoginIdleEndsStreams(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	ls := NewLogins(c.now)
	open := func() (*Login, [32]byte) {
		code, _ := ls.NewCode()
		cookie, key, _, err := ls.Exchange(code)
		if err != nil {
			t.Fatal(err)
		}
		l, _, ok := ls.Check(cookie, key)
		if !ok {
			t.Fatal("a new login does not check")
		}
		t.Cleanup(func() { l.idle.Stop() })
		return l, sha256.Sum256([]byte(cookie))
	}
	idle, idleH := open()
	typing, typingH := open()
	for range 3 { // 60 minutes, typing every 20
		c.advance(20 * time.Minute)
		if !ls.Touch(typing) {
			t.Fatal("Touch: a live login reported ended")
		}
		// The timer fires (here, by hand: its real wait is IdleTTL).
		ls.idleOut(idleH)
		ls.idleOut(typingH)
	}
	if idle.Context().Err() == nil {
		t.Errorf("a login idle for an hour: its context still runs (a terminal it opened stays open)")
	}
	if typing.Context().Err() != nil {
		t.Errorf("a login whose terminal is typed into every 20 minutes ended")
	}
	if ls.Touch(idle) {
		t.Error("Touch renewed a login that had idled out")
	}
	c.advance(IdleTTL)
	ls.idleOut(typingH)
	if typing.Context().Err() == nil {
		t.Error("a login idle after its last input still runs")
	}
}
