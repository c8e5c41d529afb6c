package gateway

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// hostGuard refuses requests that a web page could have made: a Host that
// is not one of the daemon's own names (DNS rebinding: evil.example
// resolving to 127.0.0.1) and any cross-site Origin or Sec-Fetch-Site
// (but a top-level navigation to the dashboard's login page:
// loginNavigation).
// It runs before authentication so a browser cannot even probe for a valid
// token, and the daemon never sends CORS headers, so a browser will not
// hand a page the answer to a request that got through.
type hostGuard struct {
	hosts   map[string]bool // lower-case host:port values accepted in Host
	origins map[string]bool // lower-case origins accepted in Origin
	onDeny  func(reason string, r *http.Request)
}

// newHostGuard accepts 127.0.0.1, localhost and [::1] on port, plus
// extraHost (the host of an explicit --listen) when it names one.
func newHostGuard(port int, extraHost string, onDeny func(string, *http.Request)) *hostGuard {
	g := &hostGuard{hosts: map[string]bool{}, origins: map[string]bool{}, onDeny: onDeny}
	names := []string{"127.0.0.1", "localhost", "::1"}
	if extraHost != "" && net.ParseIP(extraHost) != nil && !net.ParseIP(extraHost).IsUnspecified() {
		names = append(names, extraHost)
	}
	p := strconv.Itoa(port)
	for _, n := range names {
		hp := strings.ToLower(net.JoinHostPort(n, p))
		g.hosts[hp] = true
		g.origins["http://"+hp] = true
		if port == 80 {
			h := strings.ToLower(n)
			if strings.Contains(n, ":") {
				h = "[" + h + "]"
			}
			g.hosts[h] = true
			g.origins["http://"+h] = true
		}
	}
	return g
}

func (g *hostGuard) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hosts[strings.ToLower(r.Host)] {
			g.onDeny("host", r)
			writeError(w, http.StatusForbidden, "forbidden_host", "the Host header does not name this daemon; connect to 127.0.0.1, localhost or [::1] on the daemon's port")
			return
		}
		if origins, ok := r.Header["Origin"]; ok {
			// A browser sends "Origin: null" with a form its page posts
			// under Referrer-Policy: no-referrer (the dashboard's), and
			// says where the form came from in Sec-Fetch-Site, which no
			// page can set: null is the daemon's own page only beside
			// same-origin (an opaque origin, a sandboxed frame or a data:
			// URL, is never same-origin).
			ownNull := len(origins) == 1 && origins[0] == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin"
			if !ownNull && (len(origins) != 1 || !g.origins[strings.ToLower(origins[0])]) {
				g.onDeny("origin", r)
				writeError(w, http.StatusForbidden, "forbidden_origin", "cross-origin requests are not allowed")
				return
			}
		}
		switch r.Header.Get("Sec-Fetch-Site") {
		case "", "same-origin", "none":
		case "cross-site", "same-site":
			if loginNavigation(r) {
				break
			}
			fallthrough
		default:
			// same-site is refused too: a page on another localhost port
			// is same-site with the daemon but must not reach it.
			g.onDeny("origin", r)
			writeError(w, http.StatusForbidden, "forbidden_origin", "cross-site requests are not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loginNavigation is a browser opening the dashboard's login page as a
// top-level page from another site: from the file:// page 'ringlet ui'
// gives the browser (so the one-time code is in no command line), which
// is cross-site to every server. The login page is static, anonymous and
// carries no data; its script posts the code from the daemon's own
// origin, which the guard checks as any request. A page that sends a
// browser there learns nothing (it cannot read a navigation's answer),
// and without a code of the admin's it signs no one in.
func loginNavigation(r *http.Request) bool {
	_, origin := r.Header["Origin"]
	return r.Method == http.MethodGet && r.URL.Path == "/ui/login" && !origin &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
}
