// Command benchcli is the baseline of BenchmarkCLIRoundTrip: the least a
// Go command does to ask the daemon something.
//
//	benchcli version         prints one line and exits: a Go program's start
//	benchcli URL TOKEN_FILE  reads the admin token, GETs URL with it and
//	                         copies the answer to stdout
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Println("benchcli")
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: benchcli version | benchcli URL TOKEN_FILE")
		os.Exit(2)
	}
	tok, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcli:", err)
		os.Exit(1)
	}
	req, err := http.NewRequest("GET", os.Args[1], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcli:", err)
		os.Exit(2)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcli:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "benchcli:", resp.Status)
		os.Exit(1)
	}
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, "benchcli:", err)
		os.Exit(1)
	}
}
