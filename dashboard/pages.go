package dashboard

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// templates are parsed once, at the first page served (not at start:
// every command of the binary would pay for them); a template that does
// not parse is a bug caught by every test.
var templates = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"ago":  ago,
		"usd":  func(v float64) string { return fmt.Sprintf("$%.4f", v) },
		"sub":  func(a, b int) int { return a - b },
		"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	}).ParseFS(templateFS, "templates/*.html"))
})

// CSP admits scripts, styles, images and connections from the daemon
// itself only: no inline script or style (so markup an agent smuggled
// into a page could not run even if it were not escaped), no plugins, no
// framing, and forms post only to the daemon.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Headers sets the security headers of every dashboard response.
func Headers(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// SessionRow is one live session as the Now page shows it. Every string
// in it may come from an agent (a model name in LastAction) and is
// rendered as text.
type SessionRow struct {
	ID, Profile, Agent, Provider string
	Started                      time.Time
	Sandboxed                    bool
	Requests                     int64
	TokensIn, TokensOut          int64
	// USD is what its requests cost, when they could be priced.
	USD    float64
	Priced bool
	// BudgetLeft says what is left of the session's and its profile's
	// budgets ("" when none caps it).
	BudgetLeft []string
	// LastAction is the last audit record of the session, as one line.
	LastAction     string
	LastActionTime time.Time
	// Terminal: the session's agent runs under the daemon's terminal
	// ('profiles run --remote'); the row links to its terminal page.
	Terminal bool
}

// NowPage is a page of the Now page's table, with the summary of every
// live session: the daemon pages and sums, so a browser never receives
// more rows than one page holds, however many sessions are live.
type NowPage struct {
	Sessions []SessionRow
	Now      time.Time
	// Summary is over every live session, whatever the filter.
	Summary NowSummary
	// Filtered: a filter is set; Matching is how many live sessions it
	// matches (all of them when none is set), From and To the positions
	// of this page's rows among them (1-based; 0 when none).
	Filtered bool
	Matching int
	From, To int
	// Newer and Older are the cursors of the pages before and after
	// this one ("" when there is none); a newer page that is the first
	// page has no cursor: NewerFirst says so.
	Newer, Older string
	NewerFirst   bool
}

// NowSummary sums every live session: the Now page's counts.
type NowSummary struct {
	Live, Sandboxed int
	// USD is what their requests cost, where they could be priced.
	USD    float64
	Priced bool
	// Profiles are the profiles with the most live sessions, most first;
	// OtherProfiles counts the profiles left out.
	Profiles      []ProfileSum
	OtherProfiles int
}

// ProfileSum is one profile's share of the live sessions.
type ProfileSum struct {
	Profile  string
	Sessions int
	USD      float64
}

type page struct {
	Title, Nav string
	Body       any
}

// RenderNow writes the Now page's shell: a page's shell carries no data
// (the login cookie alone opens it), and its script fetches the data
// with the login's page key.
func RenderNow(w http.ResponseWriter) {
	render(w, http.StatusOK, "now", page{Title: "Now", Nav: "now"})
}

// RenderSessionRows writes a page of the Now page's table: the summary,
// the page's rows and its pager, which the page's script puts in place.
// It fetches them again when the event stream says a session changed.
func RenderSessionRows(w http.ResponseWriter, p NowPage) {
	render(w, http.StatusOK, "nowpage", p)
}

// RenderNowError writes a refusal of the Now page's rows (a filter or
// cursor that does not parse) as text.
func RenderNowError(w http.ResponseWriter, status int, msg string) {
	render(w, status, "auditerror", msg)
}

// RenderLogin writes the login page, whose script exchanges the code in
// the URL's fragment for a login cookie.
func RenderLogin(w http.ResponseWriter) {
	render(w, http.StatusOK, "login", page{Title: "Sign in"})
}

// RenderRefused writes the page a browser gets without a valid login:
// how to get one.
func RenderRefused(w http.ResponseWriter, status int) {
	render(w, status, "refused", page{Title: "Sign in"})
}

// render executes template name into a buffer first, so a failure is a
// clean 500 and not half a page.
func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates().ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the browser went away: nothing to do
}

// Assets serves the embedded static files under prefix; a directory is
// not listed.
func Assets(prefix string) http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// ago is a duration since t, rounded for a person.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return ""
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	default:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
}
