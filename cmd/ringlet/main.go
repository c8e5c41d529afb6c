// Command ringlet is the Ringlet daemon and its command-line client.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/neullabs/ringlet/cmd/ringlet/cli"
	"github.com/neullabs/ringlet/cmd/ringlet/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, os.Getenv, os.Environ, daemon.Daemon{})
	stop()
	os.Exit(code)
}
