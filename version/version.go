// Package version reports which build of Ringlet is running.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is set at link time by the Makefile (-X); "dev" otherwise.
var Version = "dev"

// Info describes the running build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Get returns the build's version information.
func Get() Info {
	i := Info{Version: Version, Revision: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				i.Revision = s.Value[:12]
			}
		}
	}
	return i
}
