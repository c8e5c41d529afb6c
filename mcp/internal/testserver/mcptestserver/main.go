// Command mcptestserver is the testserver upstream as a binary, for tests
// outside the mcp package. With -hostile FILE it is instead the Hostile
// HTTP server on a free loopback port, whose URL it writes to FILE.
package main

import (
	"net"
	"net/http"
	"os"

	"github.com/neullabs/ringlet/mcp/internal/testserver"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-hostile" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(1)
		}
		if err := os.WriteFile(os.Args[2], []byte("http://"+l.Addr().String()), 0o600); err != nil {
			os.Exit(1)
		}
		_ = http.Serve(l, testserver.Hostile()) // serves until the test kills it
		os.Exit(1)
	}
	os.Exit(testserver.Run(os.Args[1:]))
}
