//go:build !linux && !darwin

package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) sandboxRlimitCmd() *cobra.Command {
	return &cobra.Command{Use: "rlimit", Hidden: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("Ringlet's sandbox supports Linux and macOS only")
	}}
}
