// Calls the Anthropic Messages API through Ringlet with the official SDK,
// configured only by ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY (the session
// token), once with messages.create and once with messages.stream, and
// prints what it got as one JSON line.
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ maxRetries: 0, timeout: 30_000 });
const params = {
  model: 'claude-sonnet-4-5',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'say hi' }],
};
const text = (msg) => msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

const created = await client.messages.create(params);

const stream = client.messages.stream(params);
let deltas = 0;
stream.on('text', () => deltas++);
const streamed = await stream.finalMessage();

console.log(JSON.stringify({
  create: { text: text(created), stop_reason: created.stop_reason, usage: created.usage },
  stream: { text: text(streamed), stop_reason: streamed.stop_reason, usage: streamed.usage, deltas },
}));
