// Package deptest holds no code. Its test checks which of Ringlet's
// packages may import which, in the spirit of tailscale's tstest/deptest:
// the CLI is a client of the daemon and links none of its parts, only
// the daemon opens the audit log's writer and the credential stores, and
// nothing below cmd imports the gateway or a command.
package deptest
