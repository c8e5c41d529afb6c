// Command benchproxy runs the baselines of the process-level proxy
// benchmark as processes of their own, like the daemon:
//
//	benchproxy upstream HOST:PORT        the fake provider
//	benchproxy bare HOST:PORT URL        a bare ReverseProxy to URL
//	benchproxy floor HOST:PORT URL DB    the bare ReverseProxy that commits
//	                                     one row per request to SQLite DB
package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/neullabs/ringlet/test/bench/benchnet"
)

func main() {
	var h http.Handler
	switch {
	case len(os.Args) == 3 && os.Args[1] == "upstream":
		h = benchnet.Upstream(0)
	case len(os.Args) == 4 && os.Args[1] == "bare":
		u, err := url.Parse(os.Args[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchproxy:", err)
			os.Exit(2)
		}
		h = benchnet.Bare(u)
	case len(os.Args) == 5 && os.Args[1] == "floor":
		u, err := url.Parse(os.Args[3])
		if err == nil {
			var f *benchnet.Floor
			f, err = benchnet.NewFloor(u, os.Args[4])
			h = f
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchproxy:", err)
			os.Exit(2)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: benchproxy upstream HOST:PORT | benchproxy bare HOST:PORT UPSTREAM_URL | benchproxy floor HOST:PORT UPSTREAM_URL DB")
		os.Exit(2)
	}
	if err := http.ListenAndServe(os.Args[2], h); err != nil {
		fmt.Fprintln(os.Stderr, "benchproxy:", err)
		os.Exit(1)
	}
}
