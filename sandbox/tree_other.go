//go:build !linux

package sandbox

import (
	"context"
	"net"
)

// Tree is the process tree of one sandbox. Only Linux gives a sandbox a
// PID namespace of its own that the daemon can find from its socket;
// elsewhere there is none, and a killed session's agent is stopped by its
// launcher, or by the daemon when it is the daemon's child.
type Tree struct{}

// PeerTree finds no sandbox on this platform.
func PeerTree(net.Conn) (*Tree, error) { return nil, nil }

// Pid is 0: there is no tree.
func (t *Tree) Pid() int { return 0 }

// Namespace is 0: there is no tree.
func (t *Tree) Namespace() uint64 { return 0 }

// Kill does nothing: there is no tree.
func (t *Tree) Kill(context.Context) error { return nil }

// Close does nothing.
func (t *Tree) Close() {}
