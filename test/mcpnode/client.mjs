// The official MCP TypeScript SDK client, driven by the Go end-to-end
// tests (../mcp_test.go). argv[2] is a JSON plan:
//   {"url": "http://127.0.0.1:PORT/mcp"}            streamable HTTP, token from RINGLET_TEST_TOKEN
//   {"stdio": {"command": "...", "args": [...]}}     a stdio server (ringlet mcp --stdio), env from this process
//   "steps": [{"list": true}, {"call": "tool", "args": {...}, "progress": true}]
//   (with "progress", the call asks for progress and the step lists what came)
//   {"exec": ["/path/to/ringlet", "mcp", "tools", ...]} runs a command while
//   connected and waits (up to 20s) for notifications/tools/list_changed;
//   the step says whether one came and what the command printed; with
//   "wait": false it does not wait.
//   {"awaitListChanged": true} waits (up to 20s) for a
//   notifications/tools/list_changed that came since the step before it
//   began, and says whether one did.
//   {"resources": true} lists every page of resources ({uris, pages});
//   {"templates": true} the resource templates; {"prompts": true} the prompts;
//   {"read": "uri"} reads a resource; {"prompt": "name", "args": {...}} gets a prompt;
//   {"complete": ref, "argument": {name, value}} asks completion/complete;
//   {"subscribe": "uri"} subscribes; {"awaitUpdate": "uri"} waits (up to 20s)
//   for notifications/resources/updated of uri.
// It prints one JSON object: the negotiated version, the session id and
// each step's result or error.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ToolListChangedNotificationSchema, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { execFileSync } from "node:child_process";

const plan = JSON.parse(process.argv[2]);
const transport = plan.stdio
  ? new StdioClientTransport({ command: plan.stdio.command, args: plan.stdio.args ?? [], env: { ...process.env }, stderr: "inherit" })
  : new StreamableHTTPClientTransport(new URL(plan.url), {
      requestInit: { headers: { Authorization: `Bearer ${process.env.RINGLET_TEST_TOKEN}` } },
    });
const client = new Client({ name: "ringlet-e2e", version: "1.0.0" });
const out = { steps: [] };
let listChanged = 0;
client.setNotificationHandler(ToolListChangedNotificationSchema, () => { listChanged++; });
const updated = [];
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => { updated.push(n.params.uri); });
try {
  await client.connect(transport);
  out.protocolVersion = transport.protocolVersion ?? null;
  out.sessionId = transport.sessionId ?? null;
  out.instructions = client.getInstructions() ?? null;
  out.capabilities = client.getServerCapabilities() ?? null;
  let prevStart = listChanged;
  for (const step of plan.steps ?? []) {
    const start = listChanged;
    try {
      if (step.awaitListChanged) {
        const deadline = Date.now() + 20000;
        while (listChanged === prevStart && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        out.steps.push({ listChanged: listChanged > prevStart });
      } else if (step.list) {
        const r = await client.listTools();
        out.steps.push({ tools: r.tools.map((t) => t.name).sort() });
      } else if (step.resources) {
        const uris = [];
        let cursor, pages = 0;
        do {
          const r = await client.listResources(cursor ? { cursor } : undefined);
          pages++;
          uris.push(...r.resources.map((x) => x.uri));
          cursor = r.nextCursor;
        } while (cursor && pages < 100);
        out.steps.push({ uris: uris.sort(), pages });
      } else if (step.templates) {
        const r = await client.listResourceTemplates();
        out.steps.push({ uris: r.resourceTemplates.map((x) => x.uriTemplate).sort() });
      } else if (step.prompts) {
        const r = await client.listPrompts();
        out.steps.push({ tools: r.prompts.map((x) => x.name).sort() });
      } else if (step.read) {
        const r = await client.readResource({ uri: step.read });
        out.steps.push({ contents: r.contents });
      } else if (step.prompt) {
        const r = await client.getPrompt({ name: step.prompt, arguments: step.args ?? {} });
        out.steps.push({ messages: r.messages });
      } else if (step.complete) {
        const r = await client.complete({ ref: step.complete, argument: step.argument });
        out.steps.push({ values: r.completion.values });
      } else if (step.subscribe) {
        await client.subscribeResource({ uri: step.subscribe });
        out.steps.push({ subscribed: true });
      } else if (step.awaitUpdate) {
        const deadline = Date.now() + 20000;
        while (!updated.includes(step.awaitUpdate) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        out.steps.push({ updated: updated.includes(step.awaitUpdate), uris: [...new Set(updated)] });
      } else if (step.exec) {
        const before = listChanged;
        const stdout = execFileSync(step.exec[0], step.exec.slice(1), { encoding: "utf8" });
        const deadline = step.wait === false ? 0 : Date.now() + 20000;
        while (listChanged === before && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        out.steps.push({ stdout, listChanged: listChanged > before });
      } else if (step.call) {
        const progress = [];
        const opts = step.progress ? { onprogress: (p) => progress.push(p) } : undefined;
        const result = await client.callTool({ name: step.call, arguments: step.args ?? {} }, undefined, opts);
        out.steps.push(step.progress ? { result, progress } : { result });
      }
    } catch (e) {
      out.steps.push({ error: String(e?.message ?? e) });
    }
    prevStart = start;
  }
} catch (e) {
  out.connectError = String(e?.message ?? e);
} finally {
  await client.close().catch(() => {});
}
console.log(JSON.stringify(out));
