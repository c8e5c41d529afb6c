package cli

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/client"
)

// auditDB is the database the CLI reads: --db, else the one the running
// daemon uses, else audit.path. The CLI only ever reads it (package audit
// opens it read-only); the daemon is its one writer.
func (a *app) auditDB(flag string) (string, error) {
	if flag != "" {
		return a.auditPath(nil, flag)
	}
	paths, err := a.needPaths()
	if err != nil {
		return "", err
	}
	if st, ok := client.ReadState(paths.StateFile()); ok && client.ProcessAlive(st.PID) && st.AuditLog != "" {
		return st.AuditLog, nil
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return "", err
	}
	return cfg.AuditPath(paths)
}

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query, verify and follow the audit log",
		Long: `Every action (daemon start and stop, authentication failures, token
rotation, credential changes, profile launches, tool calls, hook decisions
and provider requests) is committed to an SQLite audit log before
it is acknowledged. Records are chained by SHA-256 and the chain's tip is
anchored in a file beside the database, so 'audit verify' finds records
that were edited, removed or reordered.

query and verify read the database directly (read-only, safe while the
daemon writes); tail follows the daemon's live stream.`,
		Example: `  ringlet audit query --since 2026-05-01 --profile work
  ringlet audit query --kind auth.failure --since 24h --json
  ringlet audit verify
  ringlet audit trace 1234
  ringlet audit tail --kind credential.set`,
	}
	cmd.AddCommand(a.auditQueryCmd(), a.auditVerifyCmd(), a.auditTailCmd(), a.auditTraceCmd(), a.auditNewEpochCmd())
	return cmd
}

func completeKinds(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return audit.Kinds, cobra.ShellCompDirectiveNoFileComp
}

func (a *app) auditQueryCmd() *cobra.Command {
	var (
		since, until, profile, session, decision, cursor, db, trace string
		kinds                                                       []string
		limit                                                       int
		asJSON, asCSV                                               bool
	)
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Print audit records, newest first",
		Long: `Print audit records, newest first. Times are YYYY-MM-DD (local midnight),
RFC 3339, or a duration ago (30m, 24h, 7d). Text fields are printed with
control characters escaped. With more records than --limit, the last line
(or next_cursor in --json) gives the --cursor for the next page.`,
		Example: `  ringlet audit query --since 2026-05-01 --profile work
  ringlet audit query --since 7d --kind credential.set,credential.remove --csv > changes.csv
  ringlet audit query --decision deny --limit 20 --json
  ringlet audit query --trace 4bf92f3577b34da6a3ce929d0e0e4736`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && asCSV {
				return usagef("--json and --csv contradict each other; pass one")
			}
			q := url.Values{}
			set := func(flag, key, v string) {
				if cmd.Flags().Changed(flag) {
					q.Set(key, v)
				}
			}
			set("since", "since", since)
			set("until", "until", until)
			set("profile", "profile", profile)
			set("session", "session", session)
			set("decision", "decision", decision)
			set("trace", "trace", trace)
			set("cursor", "cursor", cursor)
			q.Set("limit", strconv.Itoa(limit))
			for _, k := range kinds {
				q.Add("kind", k)
			}
			f, err := audit.ParseFilter(q, time.Now(), time.Local)
			if err != nil {
				return usageError{err}
			}
			path, err := a.auditDB(db)
			if err != nil {
				return err
			}
			recs, next, err := audit.Query(cmd.Context(), path, f)
			if err != nil {
				return err
			}
			switch {
			case asJSON:
				// The same page as GET /api/audit answers.
				out := api.AuditPage{Records: recs}
				if out.Records == nil {
					out.Records = []audit.Record{}
				}
				if next > 0 {
					c := strconv.FormatInt(next, 10)
					out.NextCursor = &c
				}
				return writeJSONOut(a.stdio.Out, out)
			case asCSV:
				return writeAuditCSV(a.stdio.Out, recs)
			}
			if len(recs) == 0 {
				fmt.Fprintln(a.stdio.Out, "no matching records")
				return nil
			}
			t := newTable(a.stdio.Out)
			t.row("SEQ", "TIME", "KIND", "PROFILE", "SESSION", "ACTOR", "TARGET", "DECISION", "STATUS", "DETAIL")
			for _, r := range recs {
				t.row(auditRow(r)...)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if next > 0 {
				fmt.Fprintf(a.stdio.Out, "more: --cursor %d\n", next)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "records at or after this time")
	fl.StringVar(&until, "until", "", "records before this time")
	fl.StringVar(&profile, "profile", "", "only this profile")
	fl.StringSliceVar(&kinds, "kind", nil, "only these kinds (repeatable or comma-separated)")
	fl.StringVar(&session, "session", "", "only this session")
	fl.StringVar(&decision, "decision", "", "only allow, deny or error")
	fl.StringVar(&trace, "trace", "", "only the records of this trace (its id; 'audit trace' prints its tree)")
	fl.IntVar(&limit, "limit", audit.DefaultLimit, "at most this many records")
	fl.StringVar(&cursor, "cursor", "", "continue after a previous page")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	fl.BoolVar(&asCSV, "csv", false, "print CSV")
	fl.StringVar(&db, "db", "", "read this database instead of the daemon's")
	mustFlag(cmd.RegisterFlagCompletionFunc("kind", completeKinds))
	mustFlag(cmd.RegisterFlagCompletionFunc("decision", cobra.FixedCompletions([]string{"allow", "deny", "error"}, cobra.ShellCompDirectiveNoFileComp)))
	mustFlag(cmd.RegisterFlagCompletionFunc("trace", cobra.NoFileCompletions))
	return cmd
}

func auditRow(r audit.Record) []string {
	status := ""
	if r.Status != 0 {
		status = strconv.FormatInt(r.Status, 10)
	}
	return []string{strconv.FormatInt(r.Seq, 10), r.Time.Local().Format("2006-01-02 15:04:05.000"), r.Kind, r.Profile, r.Session, r.Actor, r.Target, r.Decision, status, string(r.Detail)}
}

// writeAuditCSV prints records as CSV. Control characters are escaped like
// in the table, and a field that a spreadsheet would run as a formula is
// prefixed with a quote.
func writeAuditCSV(w interface{ Write([]byte) (int, error) }, recs []audit.Record) error {
	cw := csv.NewWriter(w)
	// A csv.Writer keeps its first error; cw.Error below reports it.
	_ = cw.Write([]string{"seq", "time", "kind", "profile", "session", "actor", "target", "decision", "status", "detail", "hash"})
	for _, r := range recs {
		row := append(auditRow(r), r.Hash)
		row[1] = r.Time.Format(time.RFC3339Nano)
		for i, f := range row {
			f = printable(f)
			if f != "" && strings.ContainsRune("=+-@", rune(f[0])) && i != 8 {
				f = "'" + f
			}
			row[i] = f
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var asJSON, sinceLast bool
	cmd := &cobra.Command{
		Use:   "verify [PATH]",
		Short: "Check the audit log's hash chain and anchor",
		Long: `Walk the hash chain of the audit database from its first record and check
that it reaches the anchor file beside it (PATH.anchor). Exits 0 when the
log is intact and 1 naming the first record that was edited, removed or
reordered, or when the last records were cut off, the database was
replaced by an older copy, deleted, or its anchor removed. New epochs
started on purpose ('ringlet audit new-epoch') are listed.

Each successful verify keeps the last record it reached and its chain hash
in PATH.verified. With --since-last the walk starts after that record: it
checks that record's hash (which commits to every record before it), the
records after it and the anchor, so a large log is checked in the time its
new records take. An edit that broke the chain before that record is found
only by a full walk (without --since-last). A progress line goes to stderr
when it is a terminal.

It cannot detect a rewrite by someone who can also rewrite the anchor file
(the same user, or root): the anchor protects against truncation and
rollback, not against an attacker with your privileges.`,
		Example: `  ringlet audit verify
  ringlet audit verify --since-last
  ringlet audit verify ~/.ringlet/audit.db --json`,
		Args: argsBetween(0, 1, "at most one PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			flag := ""
			if len(args) == 1 {
				flag = args[0]
			}
			path, err := a.auditDB(flag)
			if err != nil {
				return err
			}
			opts := audit.VerifyOptions{SinceLast: sinceLast}
			progress := a.verifyProgress()
			if progress != nil {
				opts.Progress = progress.show
			}
			res, err := audit.VerifyWith(path, opts)
			progress.clear()
			if err != nil {
				return err
			}
			if err := audit.SaveMark(res); err != nil {
				// The verify itself stands (a read-only copy, say); only
				// the next --since-last walks from further back.
				fmt.Fprintf(a.stdio.Err, "ringlet: note: %v; the next 'audit verify --since-last' of this log walks it whole\n", err)
			}
			if asJSON {
				if err := writeJSONOut(a.stdio.Out, res); err != nil {
					return err
				}
			} else if res.OK && res.SinceSeq > 0 {
				fmt.Fprintf(a.stdio.Out, "audit log %s is intact: %d records after record %d (verified before), chain and anchor verified up to record %d\n", path, res.Records, res.SinceSeq, res.LastSeq)
			} else if res.OK {
				fmt.Fprintf(a.stdio.Out, "audit log %s is intact: %d records, chain and anchor verified up to record %d\n", path, res.Records, res.LastSeq)
				for _, e := range res.Epochs {
					fmt.Fprintf(a.stdio.Out, "new epoch started on purpose at record %d (%s), reason %q; found then: %s\n",
						e.Seq, e.Time.Local().Format(time.DateTime), printable(e.Reason), printable(e.Found))
				}
			}
			if !res.OK {
				if !asJSON {
					fmt.Fprintf(a.stdio.Err, "ringlet: audit log %s is NOT intact: %s\n", path, res.Problem)
				}
				return silentExit{}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&sinceLast, "since-last", false, "start after the last record a verify reached (PATH.verified)")
	return cmd
}

// verifyProgress is the progress line of 'audit verify', on stderr when it
// is a terminal; nil otherwise.
func (a *app) verifyProgress() *progressLine {
	f, ok := a.stdio.Err.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progressLine{w: f}
}

type progressLine struct {
	w     io.Writer
	shown bool
}

func (p *progressLine) show(done, total int64) {
	if total < 100_000 && !p.shown {
		return // done before anyone would read it
	}
	pct := int64(100)
	if total > 0 {
		pct = done * 100 / total
	}
	fmt.Fprintf(p.w, "\rverifying the audit log: %d of %d records (%d%%)", done, total, pct)
	p.shown = true
}

func (p *progressLine) clear() {
	if p != nil && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func (a *app) auditTailCmd() *cobra.Command {
	var kinds []string
	var profile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow audit records live as the daemon commits them",
		Long: `Follow the daemon's live stream of audit records (the WebSocket at
/api/events) until Ctrl-C. A reader that falls too far behind is
disconnected by the daemon rather than slowing it down; tail then exits 1.`,
		Example: `  ringlet audit tail
  ringlet audit tail --kind auth.failure --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, k := range kinds {
				for _, part := range strings.Split(k, ",") {
					if _, err := audit.ParseFilter(url.Values{"kind": {part}}, time.Now(), time.Local); err != nil {
						return usageError{err}
					}
				}
			}
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			conn, err := c.Events(cmd.Context(), kinds, profile)
			if err != nil {
				return fmt.Errorf("connect to the event stream: %w", err)
			}
			defer conn.CloseNow()
			conn.SetReadLimit(1 << 20)
			if !asJSON {
				fmt.Fprintln(a.stdio.Err, "following audit records; Ctrl-C to stop")
			}
			for {
				_, data, err := conn.Read(cmd.Context())
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					if st := websocket.CloseStatus(err); st != -1 {
						return fmt.Errorf("the daemon closed the stream: %s", closeReason(err))
					}
					return fmt.Errorf("event stream: %w", err)
				}
				if asJSON {
					fmt.Fprintln(a.stdio.Out, string(data))
					continue
				}
				var r api.Event
				if err := json.Unmarshal(data, &r); err != nil {
					continue
				}
				fmt.Fprintln(a.stdio.Out, strings.Join(nonEmpty(auditRow(r)), "  "))
			}
		},
	}
	cmd.Flags().StringSliceVar(&kinds, "kind", nil, "only these kinds")
	cmd.Flags().StringVar(&profile, "profile", "", "only this profile")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON record per line")
	mustFlag(cmd.RegisterFlagCompletionFunc("kind", completeKinds))
	return cmd
}

func closeReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Reason != "" {
		return ce.Reason
	}
	return err.Error()
}

func nonEmpty(fields []string) []string {
	out := fields[:0]
	for _, f := range fields {
		if f != "" {
			out = append(out, printable(f))
		}
	}
	return out
}

func (a *app) auditNewEpochCmd() *cobra.Command {
	var reason, db string
	cmd := &cobra.Command{
		Use:   "new-epoch --reason TEXT",
		Short: "Continue an audit log that no longer matches its anchor, on purpose",
		Long: `The daemon refuses to write to an audit log that does not match
its anchor: one truncated, restored from an older copy, replaced, deleted,
or whose anchor file is gone. Writing would move the anchor to what is
there and hide what happened.

If you did that on purpose (restored a backup, moved the log), new-epoch
accepts the log as it is: it appends an audit.epoch record that says what
was found, when, and your reason, chained to the records that are there
(a deleted log starts afresh), and anchors it. The anchor file names the
epoch too, and 'ringlet audit verify' lists it from then on. Keep a copy
of the files first if you may want to investigate.

The daemon must not be running: the daemon's own code writes the record,
here, under the lock that keeps a daemon from starting meanwhile.`,
		Example: `  ringlet audit new-epoch --reason "restored audit.db from last night's backup"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usagef("--reason is required: say why the audit log is accepted as it is (it is recorded)")
			}
			paths, err := a.needPaths()
			if err != nil {
				return err
			}
			o := DaemonOptions{Paths: paths, Stderr: a.stdio.Err, Getenv: a.getenv}
			if db != "" {
				if o.AuditLog, err = a.auditPath(nil, db); err != nil {
					return err
				}
			}
			r, err := a.daemon.NewEpoch(cmd.Context(), o, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "started a new epoch at record %d of %s; 'ringlet audit verify' lists it\n", r.Seq, r.Target)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the log is accepted as it is (recorded in the audit.epoch record)")
	cmd.Flags().StringVar(&db, "db", "", "the audit database (default: audit.path)")
	return cmd
}
