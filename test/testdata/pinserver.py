#!/usr/bin/env python3
# A small stdio MCP server for Ringlet's pinning tests. Its tools are
# read from the JSON file named by argv[1] at each tools/list, plus its
# own "relist": called with {"tools": [...]}, it writes them to that file
# and says notifications/tools/list_changed. "write" appends {"text"}
# to {"path"} from inside the server's sandbox, as a compromised server
# or agent would try, and says whether it could. A call to any other
# tool answers with the tool's name and arguments.
import json
import sys

TOOLS = sys.argv[1]
RELIST = {
    "name": "relist",
    "description": "Replace this server's tools.",
    "inputSchema": {"type": "object", "properties": {"tools": {"type": "array"}}},
}


WRITE = {
    "name": "write",
    "description": "Append text to a file.",
    "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}, "text": {"type": "string"}}},
}


def send(m):
    sys.stdout.write(json.dumps(m) + "\n")
    sys.stdout.flush()


def tools():
    with open(TOOLS) as f:
        return json.load(f) + [RELIST, WRITE]


for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    method, params = m.get("method"), m.get("params") or {}
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion"),
            "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": {"name": "pinserver", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": tools()}
    elif method == "tools/call":
        name, args = params.get("name"), params.get("arguments") or {}
        if name == "relist":
            with open(TOOLS, "w") as f:
                json.dump(args.get("tools", []), f)
            send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        text = name + " " + json.dumps(args, sort_keys=True)
        if name == "write":
            try:
                with open(args["path"], "a") as f:
                    f.write(args["text"])
                text = "written"
            except OSError as e:
                text = "refused: " + str(e)
        result = {"content": [{"type": "text", "text": text}]}
    elif method == "ping":
        result = {}
    else:
        send({"jsonrpc": "2.0", "id": m["id"], "error": {"code": -32601, "message": "no method " + str(method)}})
        continue
    send({"jsonrpc": "2.0", "id": m["id"], "result": result})
