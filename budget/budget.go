// Package budget holds spending caps (budgets) and the ledger that
// enforces them: what a session, or a profile over a day, week or month,
// may spend in USD, input and output tokens, provider requests, tool calls
// and wall-clock runtime. A request reserves its worst case against every
// budget that covers it before it is forwarded, all at once under one
// lock, and its reservation is replaced by what the provider reported once
// it has answered; so concurrent requests cannot together pass a cap by
// more than one reservation's estimate error.
package budget

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits are the caps of one budget; a zero field is no cap.
type Limits struct {
	USD          float64  `toml:"usd,omitempty" json:"usd,omitempty"`
	InputTokens  int64    `toml:"input_tokens,omitempty" json:"input_tokens,omitempty"`
	OutputTokens int64    `toml:"output_tokens,omitempty" json:"output_tokens,omitempty"`
	Requests     int64    `toml:"requests,omitempty" json:"requests,omitempty"`
	ToolCalls    int64    `toml:"tool_calls,omitempty" json:"tool_calls,omitempty"`
	Runtime      Duration `toml:"runtime,omitempty" json:"runtime,omitempty"`
}

// IsZero reports whether l caps nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

// Duration is a time.Duration written as "2h30m" in TOML and JSON.
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration ("90m", "2h").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("runtime %q: want a duration such as 90m or 2h", b)
	}
	*d = Duration(v)
	return nil
}

// Exhaust actions: what happens to a session once a budget that covers it
// refuses one of its requests.
const (
	ActionKill   = "kill"   // the session is ended (the default)
	ActionRefuse = "refuse" // its requests are refused; it lives on
)

// Stream policies: what happens to a streamed answer whose reported usage
// passes a cap while it streams.
const (
	StreamCut    = "cut"    // ended at the next event boundary with an error event (the default)
	StreamFinish = "finish" // let through to its end and charged
)

// Periods of a profile's budgets. Each begins at midnight UTC: a day,
// a week from Monday, a month from its first day.
const (
	PeriodSession = "session"
	PeriodDay     = "day"
	PeriodWeek    = "week"
	PeriodMonth   = "month"
)

// Periods are the scopes a profile's budget may cover, in order.
var Periods = []string{PeriodSession, PeriodDay, PeriodWeek, PeriodMonth}

// Budget is a profile's budgets: one for each of its sessions and one for
// the profile as a whole per day, week and month (UTC), and what happens
// when one is exhausted.
type Budget struct {
	Session Limits `toml:"session,omitempty" json:"session,omitzero"`
	Day     Limits `toml:"day,omitempty" json:"day,omitzero"`
	Week    Limits `toml:"week,omitempty" json:"week,omitzero"`
	Month   Limits `toml:"month,omitempty" json:"month,omitzero"`
	// OnExhaust is ActionKill (when empty) or ActionRefuse.
	OnExhaust string `toml:"on_exhaust,omitempty" json:"on_exhaust,omitempty"`
	// Stream is StreamCut (when empty) or StreamFinish.
	Stream string `toml:"stream,omitempty" json:"stream,omitempty"`
}

// IsZero reports whether b caps nothing.
func (b Budget) IsZero() bool {
	return b.Session.IsZero() && b.Day.IsZero() && b.Week.IsZero() && b.Month.IsZero()
}

// Of returns the limits of period.
func (b *Budget) Of(period string) *Limits {
	switch period {
	case PeriodSession:
		return &b.Session
	case PeriodDay:
		return &b.Day
	case PeriodWeek:
		return &b.Week
	case PeriodMonth:
		return &b.Month
	}
	return nil
}

// Action is OnExhaust with its default.
func (b Budget) Action() string {
	if b.OnExhaust == "" {
		return ActionKill
	}
	return b.OnExhaust
}

// StreamPolicy is Stream with its default.
func (b Budget) StreamPolicy() string {
	if b.Stream == "" {
		return StreamCut
	}
	return b.Stream
}

// Validate checks b's values.
func (b Budget) Validate() error {
	for _, p := range Periods {
		l := *b.Of(p)
		if err := l.Validate(); err != nil {
			return fmt.Errorf("%s budget: %w", p, err)
		}
		if p != PeriodSession && l.Runtime != 0 {
			return fmt.Errorf("%s budget: runtime caps a session only; set it with --period session", p)
		}
	}
	switch b.OnExhaust {
	case "", ActionKill, ActionRefuse:
	default:
		return fmt.Errorf("on_exhaust %q: want kill or refuse", b.OnExhaust)
	}
	switch b.Stream {
	case "", StreamCut, StreamFinish:
	default:
		return fmt.Errorf("stream %q: want cut or finish", b.Stream)
	}
	return nil
}

// Validate checks l's values.
func (l Limits) Validate() error {
	if l.USD < 0 || math.IsNaN(l.USD) || math.IsInf(l.USD, 0) || l.InputTokens < 0 || l.OutputTokens < 0 ||
		l.Requests < 0 || l.ToolCalls < 0 || l.Runtime < 0 {
		return errors.New("a cap must be a positive number")
	}
	return nil
}

// Parse reads limits written as "usd=5,input=2M,output=200k,requests=100,
// tools=50,runtime=2h" (any of them, in any order; k and M multiply by a
// thousand and a million).
func Parse(spec string) (Limits, error) {
	var l Limits
	if strings.TrimSpace(spec) == "" {
		return l, errors.New("empty budget: want e.g. usd=5,output=200k,requests=100")
	}
	for part := range strings.SplitSeq(spec, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || val == "" {
			return l, fmt.Errorf("budget %q: want NAME=VALUE (usd, input, output, requests, tools, runtime)", part)
		}
		var err error
		switch strings.ToLower(name) {
		case "usd":
			l.USD, err = strconv.ParseFloat(strings.TrimPrefix(val, "$"), 64)
			if err == nil && (l.USD <= 0 || math.IsInf(l.USD, 0) || math.IsNaN(l.USD)) {
				err = errors.New("want a positive amount")
			}
		case "input", "input_tokens":
			l.InputTokens, err = count(val)
		case "output", "output_tokens":
			l.OutputTokens, err = count(val)
		case "requests":
			l.Requests, err = count(val)
		case "tools", "tool_calls":
			l.ToolCalls, err = count(val)
		case "runtime":
			err = l.Runtime.UnmarshalText([]byte(val))
			if err == nil && l.Runtime <= 0 {
				err = errors.New("want a positive duration")
			}
		default:
			return l, fmt.Errorf("budget: unknown cap %q: want usd, input, output, requests, tools or runtime", name)
		}
		if err != nil {
			return l, fmt.Errorf("budget %s=%s: %w", name, val, err)
		}
	}
	return l, nil
}

func count(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1000, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1000_000, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, errors.New("want a positive whole number (k and M allowed)")
	}
	return n * mult, nil
}

// String writes l as Parse reads it.
func (l Limits) String() string {
	var parts []string
	if l.USD > 0 {
		parts = append(parts, "usd="+strconv.FormatFloat(l.USD, 'f', -1, 64))
	}
	for _, c := range []struct {
		n string
		v int64
	}{{"input", l.InputTokens}, {"output", l.OutputTokens}, {"requests", l.Requests}, {"tools", l.ToolCalls}} {
		if c.v > 0 {
			parts = append(parts, c.n+"="+strconv.FormatInt(c.v, 10))
		}
	}
	if l.Runtime > 0 {
		parts = append(parts, "runtime="+time.Duration(l.Runtime).String())
	}
	return strings.Join(parts, ",")
}

// PeriodStart is when the period that holds t began, in UTC; the zero
// time for PeriodSession.
func PeriodStart(period string, t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch period {
	case PeriodDay:
		return day
	case PeriodWeek:
		// ISO weeks begin on Monday.
		back := (int(day.Weekday()) + 6) % 7
		return day.AddDate(0, 0, -back)
	case PeriodMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}
