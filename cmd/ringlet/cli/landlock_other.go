//go:build !linux

package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) sandboxLandlockCmd() *cobra.Command {
	return &cobra.Command{Use: "landlock", Hidden: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("landlock: Linux only")
	}}
}
