package hook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// OpenCodeAdapterArg is the ringlet subcommand that Ringlet's OpenCode
// plugin runs before every tool call OpenCode makes.
const OpenCodeAdapterArg = "hook opencode-pre-tool-use"

// OpenCodePluginDir is where, relative to the HOME of an OpenCode
// session, Ringlet writes its plugin: the plugin directory of the config
// directory the catalog names in OPENCODE_CONFIG_DIR. OpenCode loads that
// directory after every other (its global config, ~/.opencode), so
// Ringlet's tool.execute.before runs after any other plugin's and judges
// a tool call's arguments as they will run.
const OpenCodePluginDir = ".config/opencode-ringlet/plugin"

// OpenCodePluginFile is the plugin's file name in OpenCodePluginDir.
const OpenCodePluginFile = "ringlet.js"

// OpenCodePlugin is the source of Ringlet's OpenCode plugin for the
// ringlet binary at ringlet, an absolute path seen the same in and out of
// the agent's sandbox. Its tool.execute.before hook runs `ringlet hook
// opencode-pre-tool-use` with the call on stdin, and throws (which makes
// OpenCode refuse the call and give the model the message) with the
// adapter's first line of stderr unless it exits 0: a refusal, an adapter
// that cannot start, is killed or fails, all block the call.
func OpenCodePlugin(ringlet string) ([]byte, error) {
	if !strings.HasPrefix(ringlet, "/") || strings.ContainsFunc(ringlet, unicode.IsControl) {
		return nil, fmt.Errorf("the ringlet binary's path %q cannot be written into an OpenCode plugin; install ringlet at a plain absolute path", ringlet)
	}
	path, err := json.Marshal(ringlet) // a JavaScript string literal too: Go escapes U+2028 and U+2029
	if err != nil {
		return nil, err
	}
	args, err := json.Marshal(strings.Fields(OpenCodeAdapterArg))
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, openCodePlugin, path, args), nil
}

const openCodePlugin = `// Ringlet's hook adapter for OpenCode, written by Ringlet at every session
// start: a change here lasts until the next one. Every tool call is asked
// of Ringlet's pre-tool-use hooks first; a refusal, or any failure to ask,
// blocks it.
import { spawn } from "node:child_process";

const ringlet = %s;
const adapterArgs = %s;

function blocked(reason) {
  return new Error(reason);
}

function check(input, output) {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(ringlet, adapterArgs, { stdio: ["pipe", "ignore", "pipe"] });
    } catch (e) {
      reject(blocked("ringlet: blocked: could not run Ringlet's hook adapter: " + e.message));
      return;
    }
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d) => {
      if (stderr.length < 65536) stderr += d;
    });
    child.on("error", (e) => reject(blocked("ringlet: blocked: could not run Ringlet's hook adapter: " + e.message)));
    child.on("close", (code) => {
      if (code === 0) {
        resolve();
        return;
      }
      const line = stderr.split("\n").find((l) => l.trim() !== "");
      reject(blocked(line || "ringlet: blocked: Ringlet's hook adapter failed"));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(JSON.stringify({ tool: input.tool, sessionID: input.sessionID, callID: input.callID, args: output.args }));
  });
}

export const RingletHooks = async () => ({
  "tool.execute.before": async (input, output) => {
    await check(input, output);
  },
});
`

// openCodeTools are OpenCode's own tools, by its name, with the name
// Claude Code gives the same tool: hooks written for one agent's Bash or
// Write see the other's the same way.
var openCodeTools = map[string]string{
	"bash":      "Bash",
	"read":      "Read",
	"write":     "Write",
	"edit":      "Edit",
	"multiedit": "MultiEdit",
	"glob":      "Glob",
	"grep":      "Grep",
	"list":      "LS",
	"webfetch":  "WebFetch",
	"websearch": "WebSearch",
	"todowrite": "TodoWrite",
	"todoread":  "TodoRead",
	"task":      "Task",
}

// OpenCodeEvent is the tool name and input a pre-tool-use hook sees for
// OpenCode's call of tool with args (its JSON object). OpenCode's own
// tools take Claude Code's names (bash is Bash) and their arguments' keys
// Claude Code's snake_case (filePath is file_path, oldString old_string);
// other tools (apply_patch, MCP tools) keep OpenCode's name and
// arguments.
func OpenCodeEvent(tool string, args json.RawMessage) (string, json.RawMessage, error) {
	if tool == "" {
		return "", nil, fmt.Errorf("no tool name")
	}
	if len(bytes.TrimSpace(args)) == 0 || bytes.Equal(bytes.TrimSpace(args), []byte("null")) {
		args = json.RawMessage("{}")
	}
	name, ok := openCodeTools[tool]
	if !ok {
		return tool, args, nil
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(args, &in); err != nil {
		return "", nil, fmt.Errorf("the arguments of %s are not a JSON object", tool)
	}
	out := make(map[string]json.RawMessage, len(in))
	for k, v := range in {
		sk := snakeCase(k)
		if _, dup := out[sk]; dup {
			return "", nil, fmt.Errorf("the arguments of %s name %s twice", tool, sk)
		}
		out[sk] = v
	}
	input, err := json.Marshal(out)
	if err != nil {
		return "", nil, err
	}
	return name, input, nil
}

// snakeCase is filePath as file_path.
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
