package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/privatefile"
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
It is given a private file (mode 0600, in ringlet's state directory)
that sends it on to the link, never the link itself: a command line is
readable by every user of the machine. The command waits until the
browser signs in (or the link expires) and removes the file.

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
			file, err := a.loginFile(link.URL)
			if err != nil {
				return fmt.Errorf("could not write the page that opens the dashboard (%v); run 'ringlet ui --no-browser' and open the link it prints", err)
			}
			// Gone once the code is used or expired: it is worthless then.
			defer os.Remove(file)
			if err := a.openBrowser(file); err != nil {
				return fmt.Errorf("could not open a browser (%v); run 'ringlet ui --no-browser' and open the link it prints", err)
			}
			fmt.Fprintf(a.stdio.Err, "opening the dashboard in your browser; waiting for it to sign in (the link works once, within %s)\n",
				time.Until(code.Expires).Round(time.Second))
			ctx, cancel := context.WithDeadline(cmd.Context(), code.Expires.Add(10*time.Second))
			defer cancel()
			used, err := c.UICodeWait(ctx, code.Code)
			switch {
			case err != nil:
				return fmt.Errorf("waiting for the browser to sign in: %w", err)
			case !used:
				return errors.New("the browser did not sign in before the link expired; run 'ringlet ui' again, or 'ringlet ui --no-browser' and open the link it prints")
			}
			fmt.Fprintln(a.stdio.Out, "signed in: the dashboard is open in your browser")
			return nil
		},
	}
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "print the link instead of opening a browser")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the link and when it expires as JSON (opens no browser)")
	return cmd
}

// loginFile writes a private page that sends a browser on to link, and
// returns its path: the browser is given the path, so the one-time code
// in link is in no command line (/proc/PID/cmdline is readable by every
// user). It is a file of the browser's, not a page of the daemon: a meta
// refresh, which chromium and firefox follow from a file:// page,
// fragment and all. Files older than their code (a 'ringlet ui' that was
// killed) are removed first.
func (a *app) loginFile(link string) (string, error) {
	paths, err := a.needPaths()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(paths.StateDir, "ui")
	if err := privatefile.EnsureDir(dir); err != nil {
		return "", err
	}
	if old, err := filepath.Glob(filepath.Join(dir, "login-*.html")); err == nil {
		for _, f := range old {
			if fi, err := os.Stat(f); err == nil && time.Since(fi.ModTime()) > 5*time.Minute {
				_ = os.Remove(f) // best effort: its code expired long ago
			}
		}
	}
	file := filepath.Join(dir, "login-"+rand.Text()+".html")
	l := html.EscapeString(link)
	page := `<!doctype html>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url=` + l + `">
<title>Ringlet</title>
<p>Opening the dashboard… <a href="` + l + `">continue</a></p>
`
	if err := privatefile.Create(file, []byte(page)); err != nil {
		return "", err
	}
	return file, nil
}
