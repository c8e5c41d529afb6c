package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/privatefile"
)

// ReadState returns what the daemon that last ran wrote to its state file
// (daemon.json), if anything sound.
func ReadState(file string) (api.DaemonState, bool) {
	var st api.DaemonState
	data, err := privatefile.Read(file, 64<<10)
	if err != nil || json.Unmarshal(data, &st) != nil || st.PID <= 0 {
		return api.DaemonState{}, false
	}
	return st, true
}

// ProcessAlive reports whether pid runs. A zombie (exited, not yet
// reaped by its parent) does not count: it no longer holds the port.
func ProcessAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	return true
}
