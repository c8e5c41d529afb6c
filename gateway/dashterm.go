package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/dashboard"
)

// errLoginEnded ends a dashboard terminal's WebSocket when the login that
// opened it ends (logout, rotate-token, expiry).
var errLoginEnded = errors.New("the dashboard login ended")

// handleTerminalPage is the terminal page's shell (GET
// /ui/terminal/{id}): no data, so the cookie alone opens it; its script
// attaches with the page key (handleUIAttach). Whether the session has a
// terminal is the attach's to say.
func handleTerminalPage(w http.ResponseWriter, r *http.Request) {
	dashboard.RenderTerminal(w, chi.URLParam(r, "id"))
}

// handleUIAttach is the terminal page's WebSocket (GET
// /ui/terminal/{id}/attach): the same viewer as 'terminal attach'
// (handleTerminalAttach), for a browser whose login cookie came with its
// page key in the subprotocol pair "ringlet-page, KEY" (pageKey). It
// ends when the login does (logout, rotation, idle or absolute expiry);
// what the viewer types renews the login's idle expiry, as a keyed
// request does.
func (tm *terminals) handleUIAttach(w http.ResponseWriter, r *http.Request) {
	login := callerFrom(r.Context()).login
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(login.Context(), func() { cancel(errLoginEnded) })
	defer func() {
		stop()
		cancel(nil)
	}()
	tm.attach(w, r.WithContext(ctx), func() { tm.o.Logins.Touch(login) })
}

// has reports whether session id has a remote terminal: the Now page
// links to its terminal page.
func (tm *terminals) has(id string) bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	_, ok := tm.byID[id]
	return ok
}

// endedBy is what a viewer's socket is told when its request's context
// ended: the token was rotated, or the dashboard's login ended.
func endedBy(ctx context.Context) string {
	if errors.Is(context.Cause(ctx), errLoginEnded) {
		return errLoginEnded.Error()
	}
	return "token rotated"
}
