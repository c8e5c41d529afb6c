// Command mcptestserver is the testserver upstream as a binary, for tests
// outside the mcp package.
package main

import (
	"os"

	"github.com/neullabs/ringlet/mcp/internal/testserver"
)

func main() { os.Exit(testserver.Run(os.Args[1:])) }
