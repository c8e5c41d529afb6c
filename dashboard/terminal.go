package dashboard

import "net/http"

// TerminalPage is the terminal page of one session.
type TerminalPage struct {
	// Session is the session's ID, from the page's address: the page's
	// script attaches to it. It is no data of the daemon's: the shell
	// says nothing of whether the session exists.
	Session string
}

// RenderTerminal writes the terminal page's shell for session id: an
// in-browser terminal (xterm.js) whose script attaches to the session's
// remote agent over a WebSocket with the login's page key.
func RenderTerminal(w http.ResponseWriter, id string) {
	render(w, http.StatusOK, "terminal", page{Title: "Terminal", Nav: "terminal", Body: TerminalPage{Session: id}})
}
