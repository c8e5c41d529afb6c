package api

import "time"

// UILoginCode answers POST /api/ui/code: a one-time code that opens the
// dashboard once, until Expires. Path is where a browser exchanges it:
// the daemon's base URL and Path open the dashboard (the code is in the
// URL's fragment, which a browser never sends to a server).
type UILoginCode struct {
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
	Path    string    `json:"path"`
}

// UILogin answers POST /ui/login (the dashboard's own script): the
// login's page key, which opens its data and changes beside the login
// cookie, until Expires.
type UILogin struct {
	Key     string    `json:"key"`
	Expires time.Time `json:"expires"`
}

// UICodeWait asks POST /api/ui/code/wait to wait until a login code is
// used or expires.
type UICodeWait struct {
	Code string `json:"code"`
}

// UICodeWaited answers POST /api/ui/code/wait: whether the code was used
// (a browser signed in with it) before it expired.
type UICodeWaited struct {
	Used bool `json:"used"`
}
