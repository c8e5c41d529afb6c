package daemon

import (
	"fmt"
	"os"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/cmd/ringlet/cli"
	"github.com/neullabs/ringlet/config"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/sandbox"
)

// SandboxProbes builds the escape probes of 'ringlet sandbox check' with
// the builder the daemon builds every sandbox with, configured as the
// daemon configures it; the CLI runs them, daemon or not.
func (d Daemon) SandboxProbes(o cli.DaemonOptions, r cli.ProbeRequest) (cli.Probes, error) {
	paths := o.Paths
	// The audit log of the running daemon, else audit.path: one of
	// Ringlet's own files. A config that cannot be read leaves it out
	// (the check never needed the config); the directories stay.
	auditPath := o.AuditLog
	if cfg, err := config.Load(paths.ConfigFile()); auditPath == "" && err == nil {
		auditPath, _ = cfg.AuditPath(paths)
	}
	exe, err := os.Executable()
	if err != nil {
		return cli.Probes{}, fmt.Errorf("find the ringlet binary: %w", err)
	}
	b := launch.New(launch.Options{OwnPaths: ownPaths(paths, auditPath), Executable: exe, StateDir: paths.StateDir, ConfigDir: paths.ConfigDir})
	probes, err := b.Probes(launch.ProbeRequest{Workspace: r.Workspace, Home: r.Home, HostHome: r.HostHome, Profile: r.Profile, DaemonPort: r.DaemonPort})
	if err != nil {
		return cli.Probes{}, err
	}
	l := probes.Limits.WithDefaults()
	out := cli.Probes{Bwrap: probes.Tool,
		Limits: cli.SandboxLimits{Mechanism: l.Mechanism, Procs: l.Procs, Memory: l.Memory, Tmp: l.Tmp,
			// Root is exempt from RLIMIT_NPROC; a systemd scope binds it too.
			ProcsBounded: l.Mechanism == sandbox.LimitSystemd || os.Geteuid() != 0}}
	for _, p := range probes.Probes {
		out.Probes = append(out.Probes, cli.Probe{Name: p.Name, Absent: p.Absent,
			Plan: api.LaunchPlan{Argv: p.Plan.Argv, Env: p.Plan.Env, Dir: p.Plan.Dir, Files: p.Plan.Files, Sandbox: p.Plan.Sandboxed, Trees: p.Plan.Trees}})
	}
	return out, nil
}
