// Package dashboard is the browser face of the daemon: the one-time login
// codes and the login cookies they are exchanged for (Logins), the pages
// (html/template, every value from agents and the audit log rendered as
// text) and the static assets they load, embedded in the binary. It knows
// nothing of HTTP routing or of who may call what: the gateway mounts its
// pages on routes of its route table, behind its gate.
//
// Every response of the dashboard carries Headers: a CSP that admits
// only the daemon's own scripts and styles (no inline script or style,
// no framing), nosniff and no referrer.
package dashboard
