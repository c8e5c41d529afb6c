package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/version"
)

func (a *app) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit of this ringlet binary",
		Long: `Print the version of this binary, the commit it was built from and whether
that tree had uncommitted changes ("dirty"). Builds by make take them from
git; 'go install ...@VERSION' and 'go build' record them in the binary.
A build that records neither says dev and unknown.`,
		Example: "  ringlet version\n  ringlet version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := version.Get()
			if asJSON {
				return writeJSONOut(a.stdio.Out, v)
			}
			commit := "commit " + v.Short()
			if v.Dirty {
				commit += ", dirty"
			}
			fmt.Fprintf(a.stdio.Out, "ringlet %s (%s; %s %s)\n", v.Version, commit, v.GoVersion, v.Platform)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) apiCmd() *cobra.Command {
	var method, data string
	cmd := &cobra.Command{
		Use:   "api PATH",
		Short: "Send an authenticated request to the daemon's REST API",
		Long: `Send a request to the daemon with the bearer token and print the JSON answer.
Starts the daemon in the background if it is not running.

The method is GET, or POST when --data is given. --data takes JSON, @FILE
or - for standard input. A non-2xx answer prints the daemon's error message
on stderr and exits 1.`,
		Example: `  ringlet api /api/status
  ringlet api -X POST /api/daemon/rotate-token
  echo '{}' | ringlet api /api/sessions --data -`,
		Args: exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if !strings.HasPrefix(path, "/") {
				return usagef("PATH must start with /, e.g. /api/status")
			}
			var body []byte
			if cmd.Flags().Changed("data") {
				var err error
				body, err = a.readData(data)
				if err != nil {
					return err
				}
				if !json.Valid(body) {
					return usagef("--data is not valid JSON")
				}
				if method == "" {
					method = "POST"
				}
			}
			if method == "" {
				method = "GET"
			}
			method = strings.ToUpper(method)
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var in any
			if body != nil {
				in = body
			}
			raw, err := c.Raw(cmd.Context(), method, path, in)
			if err != nil {
				return err
			}
			var pretty bytes.Buffer
			if json.Indent(&pretty, raw, "", "  ") != nil {
				_, err = a.stdio.Out.Write(raw)
				return err
			}
			pretty.WriteByte('\n')
			_, err = pretty.WriteTo(a.stdio.Out)
			return err
		},
	}
	cmd.Flags().StringVarP(&method, "method", "X", "", "HTTP method (default GET, or POST with --data)")
	cmd.Flags().StringVarP(&data, "data", "d", "", "request body: JSON, @FILE, or - for stdin")
	return cmd
}

func (a *app) readData(spec string) ([]byte, error) {
	const limit = 16 << 20
	switch {
	case spec == "-":
		return io.ReadAll(io.LimitReader(a.stdio.In, limit))
	case strings.HasPrefix(spec, "@"):
		f, err := os.Open(spec[1:])
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is said once, below
			}
			return nil, fmt.Errorf("read %s: %w", spec[1:], err)
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, limit))
	default:
		return []byte(spec), nil
	}
}
