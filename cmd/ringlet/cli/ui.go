package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// uiLink is what 'ringlet ui --json' prints.
type uiLink struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

func (a *app) uiCmd() *cobra.Command {
	var noBrowser, asJSON bool
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Open the dashboard in your browser, signed in with a one-time link",
		Long: `Open the daemon's dashboard (live sessions, each with a kill button) in
your browser. The daemon starts if it is not running.

The link carries a one-time code in its fragment (after #), which a
browser never sends anywhere: the page exchanges it, once, within a
minute, for a login: a cookie and a page key that only the dashboard's
own page holds. The login ends after 30 minutes without use, 12 hours
after it began, on 'Log out', and on 'ringlet daemon rotate-token'. The
admin token never reaches the page.

The browser is $BROWSER when set, else xdg-open (Linux) or open (macOS).
With --no-browser the link is printed instead, to open yourself (on
another machine, forward the daemon's port over SSH first).`,
		Example: `  ringlet ui
  ringlet ui --no-browser
  ringlet ui --no-browser --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			code, err := c.UICode(cmd.Context())
			if err != nil {
				return err
			}
			link := uiLink{URL: strings.TrimSuffix(c.BaseURL(), "/") + code.Path, Expires: code.Expires}
			if asJSON {
				return writeJSONOut(a.stdio.Out, link)
			}
			if noBrowser {
				fmt.Fprintln(a.stdio.Out, link.URL)
				fmt.Fprintf(a.stdio.Err, "open this link within %s; it works once\n", time.Until(code.Expires).Round(time.Second))
				return nil
			}
			if err := a.openBrowser(link.URL); err != nil {
				return fmt.Errorf("could not open a browser (%v); run 'ringlet ui --no-browser' and open the link it prints", err)
			}
			fmt.Fprintf(a.stdio.Out, "opened the dashboard in your browser; the link works once, within %s\n", time.Until(code.Expires).Round(time.Second))
			return nil
		},
	}
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "print the link instead of opening a browser")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the link and when it expires as JSON (opens no browser)")
	return cmd
}
