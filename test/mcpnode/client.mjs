// The official MCP TypeScript SDK client, driven by the Go end-to-end
// tests (../mcp_test.go). argv[2] is a JSON plan:
//   {"url": "http://127.0.0.1:PORT/mcp"}            streamable HTTP, token from RINGLET_TEST_TOKEN
//   {"stdio": {"command": "...", "args": [...]}}     a stdio server (ringlet mcp --stdio), env from this process
//   "steps": [{"list": true}, {"call": "tool", "args": {...}, "progress": true}]
//   (with "progress", the call asks for progress and the step lists what came)
// It prints one JSON object: the negotiated version, the session id and
// each step's result or error.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const plan = JSON.parse(process.argv[2]);
const transport = plan.stdio
  ? new StdioClientTransport({ command: plan.stdio.command, args: plan.stdio.args ?? [], env: { ...process.env }, stderr: "inherit" })
  : new StreamableHTTPClientTransport(new URL(plan.url), {
      requestInit: { headers: { Authorization: `Bearer ${process.env.RINGLET_TEST_TOKEN}` } },
    });
const client = new Client({ name: "ringlet-e2e", version: "1.0.0" });
const out = { steps: [] };
try {
  await client.connect(transport);
  out.protocolVersion = transport.protocolVersion ?? null;
  out.sessionId = transport.sessionId ?? null;
  out.instructions = client.getInstructions() ?? null;
  for (const step of plan.steps ?? []) {
    try {
      if (step.list) {
        const r = await client.listTools();
        out.steps.push({ tools: r.tools.map((t) => t.name).sort() });
      } else if (step.call) {
        const progress = [];
        const opts = step.progress ? { onprogress: (p) => progress.push(p) } : undefined;
        const result = await client.callTool({ name: step.call, arguments: step.args ?? {} }, undefined, opts);
        out.steps.push(step.progress ? { result, progress } : { result });
      }
    } catch (e) {
      out.steps.push({ error: String(e?.message ?? e) });
    }
  }
} catch (e) {
  out.connectError = String(e?.message ?? e);
} finally {
  await client.close().catch(() => {});
}
console.log(JSON.stringify(out));
