// Package child holds what the daemon does for every process it starts on
// behalf of a profile (hooks, MCP servers): its own process group, and no
// descriptor the daemon inherited.
package child

import (
	"os"
	"strconv"
	"syscall"
)

// CloseInheritedOnExec marks every descriptor above 2 close-on-exec. Go
// opens its own files that way, but descriptors the daemon inherited from
// whoever started it are not, and a child must get none of them.
func CloseInheritedOnExec() error {
	entries, err := os.ReadDir("/dev/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
}
