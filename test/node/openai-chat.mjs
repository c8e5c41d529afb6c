// Calls OpenAI Chat Completions through Ringlet with the official SDK,
// configured only by OPENAI_BASE_URL and OPENAI_API_KEY (the session
// token): a stream with stream_options.include_usage, read chunk by chunk,
// then the same through the SDK's accumulating chat.completions.stream.
// Prints what it got as one JSON line.
import OpenAI from 'openai';

const client = new OpenAI({ maxRetries: 0, timeout: 30_000 });
const params = {
  model: 'gpt-4.1',
  messages: [{ role: 'user', content: 'say hi' }],
  stream_options: { include_usage: true },
};

const stream = await client.chat.completions.create({ ...params, stream: true });
let text = '';
let chunks = 0;
let usage = null;
let finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta?.content ?? '';
    finish = c.finish_reason ?? finish;
  }
}

const helper = client.chat.completions.stream(params);
const final = await helper.finalChatCompletion();

console.log(JSON.stringify({
  create: { text, chunks, usage, finish_reason: finish },
  stream: { text: final.choices[0].message.content, finish_reason: final.choices[0].finish_reason, usage: final.usage },
}));
