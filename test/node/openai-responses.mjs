// Calls the OpenAI Responses API through Ringlet with the official SDK,
// configured only by OPENAI_BASE_URL and OPENAI_API_KEY (the session
// token): responses.create with stream: true, read event by event, then
// the same through the SDK's accumulating responses.stream. Prints what it
// got as one JSON line.
import OpenAI from 'openai';

const client = new OpenAI({ maxRetries: 0, timeout: 30_000 });
const params = { model: 'gpt-4.1', input: 'say hi' };

const stream = await client.responses.create({ ...params, stream: true });
let text = '';
const types = [];
let completed = null;
for await (const ev of stream) {
  types.push(ev.type);
  if (ev.type === 'response.output_text.delta') text += ev.delta;
  if (ev.type === 'response.completed') completed = ev.response;
}

const helper = client.responses.stream(params);
const final = await helper.finalResponse();
const finalText = final.output
  .filter((item) => item.type === 'message')
  .flatMap((item) => item.content)
  .filter((c) => c.type === 'output_text')
  .map((c) => c.text)
  .join('');

console.log(JSON.stringify({
  create: { text, types, status: completed?.status, usage: completed?.usage },
  stream: { text: finalText, status: final.status, usage: final.usage },
}));
