// Drives the gateway's OpenAI-compatible API with the official `openai` npm client, the way
// users will: an API key (and a wrong one), model listing, a non-streaming and a streaming chat
// completion (which must agree under greedy decoding), n > 1 choices, the legacy completions
// endpoint, an image given as a data URL, penalties and logit_bias, and rejected requests.
//
//   node chat_test.mjs --base_url=http://127.0.0.1:8080/v1 --image=image0.png --api_key=KEY
//       [--model=NAME]
//
// Without --model the one model the server lists is used.
// Exits non-zero on the first failed check.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

function args() {
  const out = {};
  for (const a of process.argv.slice(2)) {
    const m = a.match(/^--([^=]+)=(.*)$/);
    if (!m) throw new Error(`bad argument ${a}`);
    out[m[1]] = m[2];
  }
  for (const k of ['base_url', 'image', 'api_key']) {
    if (!out[k]) throw new Error(`--${k} is required`);
  }
  return out;
}

const opts = args();
// No retries: a 429/5xx must surface here, not be hidden by the client's backoff.
const client = new OpenAI({ baseURL: opts.base_url, apiKey: opts.api_key, maxRetries: 0, timeout: 60000 });
let model = opts.model;
const question = [{ role: 'user', content: 'Describe the weather in one sentence.' }];

async function check(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok  ${name} (${Date.now() - t0} ms)`);
}

async function expectStatus(status, body) {
  let error;
  try {
    await client.chat.completions.create(body);
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected HTTP ${status}, the request succeeded`);
  assert.ok(error instanceof OpenAI.APIError, `expected an APIError, got ${error}`);
  assert.equal(error.status, status, `status: ${error.message}`);
  assert.equal(typeof error.error?.message, 'string', 'OpenAI error shape');
  return error;
}

let unary;
await check('a wrong API key is 401 (AuthenticationError)', async () => {
  const stranger = new OpenAI({ baseURL: opts.base_url, apiKey: 'sk-wrong-key-0000', maxRetries: 0 });
  let error;
  try {
    await stranger.chat.completions.create({ messages: question, max_tokens: 2 });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof OpenAI.AuthenticationError, `got ${error}`);
  assert.equal(error.status, 401);
  assert.equal(error.code, 'invalid_api_key');
  error = undefined;
  try {
    await stranger.models.list();
  } catch (e) {
    error = e;
  }
  assert.equal(error?.status, 401);
});

await check('models.list', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  assert.equal(models.length, 1, `models: ${models}`);
  model ??= models[0];
  assert.equal(models[0], model);
});

await check('non-streaming completion', async () => {
  unary = await client.chat.completions.create({
    model, messages: question, max_tokens: 12, temperature: 0,
  });
  assert.equal(unary.object, 'chat.completion');
  assert.match(unary.id, /^chatcmpl-./);
  assert.equal(unary.model, model);
  assert.equal(unary.choices.length, 1);
  const choice = unary.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(['stop', 'length'].includes(choice.finish_reason), choice.finish_reason);
  const u = unary.usage;
  assert.ok(u.prompt_tokens > 0);
  assert.ok(u.completion_tokens > 0 && u.completion_tokens <= 12, `${u.completion_tokens}`);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  if (choice.finish_reason === 'length') assert.equal(u.completion_tokens, 12);
});

await check('streaming completion matches the non-streaming one (greedy)', async () => {
  const stream = await client.chat.completions.create({
    model, messages: question, max_tokens: 12, temperature: 0,
    stream: true, stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 3, `only ${chunks.length} chunks`);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, model);
    assert.equal(c.id, chunks[0].id);
  }
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const usageChunk = chunks.at(-1);
  assert.deepEqual(usageChunk.choices, []);
  const finishes = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finishes.length, 1, 'exactly one chunk carries finish_reason');
  assert.equal(finishes[0].choices[0].finish_reason, unary.choices[0].finish_reason);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, unary.choices[0].message.content);
  assert.deepEqual(usageChunk.usage.completion_tokens, unary.usage.completion_tokens);
  assert.deepEqual(usageChunk.usage.prompt_tokens, unary.usage.prompt_tokens);
});

await check('image as a data URL', async () => {
  const b64 = readFileSync(opts.image).toString('base64');
  const textOnly = await client.chat.completions.create({
    model, max_tokens: 4, temperature: 0,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }] }],
  });
  const withImage = await client.chat.completions.create({
    model, max_tokens: 4, temperature: 0,
    messages: [{
      role: 'user',
      content: [
        { type: 'image_url', image_url: { url: `data:image/png;base64,${b64}` } },
        { type: 'text', text: 'What is in this picture?' },
      ],
    }],
  });
  assert.equal(withImage.choices[0].message.role, 'assistant');
  assert.ok(withImage.usage.completion_tokens > 0);
  // The image rows replace its 3 marker tokens, so the prompt grows by far more than 3.
  assert.ok(withImage.usage.prompt_tokens > textOnly.usage.prompt_tokens + 3,
    `${withImage.usage.prompt_tokens} vs ${textOnly.usage.prompt_tokens}`);
});

await check('n = 3 choices, seeded and reproducible', async () => {
  const body = { model, messages: question, n: 3, max_tokens: 6, temperature: 1, seed: 7 };
  const a = await client.chat.completions.create(body);
  const b = await client.chat.completions.create(body);
  assert.equal(a.choices.length, 3);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.ok(a.usage.completion_tokens <= 18);
  assert.equal(a.usage.prompt_tokens, unary.usage.prompt_tokens);  // the prompt counts once
});

await check('legacy completions: text, stream, logprobs', async () => {
  const c = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, logprobs: 2,
  });
  assert.equal(c.object, 'text_completion');
  assert.match(c.id, /^cmpl-./);
  assert.equal(typeof c.choices[0].text, 'string');
  assert.ok(c.choices[0].logprobs.tokens.length > 0);
  // (the tokens may end with the stop token, whose text the completion leaves out)
  assert.ok(c.choices[0].logprobs.tokens.join('').startsWith(c.choices[0].text));
  const stream = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, c.choices[0].text);
  const batch = await client.completions.create({
    model, prompt: ['a', 'b'], n: 2, max_tokens: 2, temperature: 0,
  });
  assert.equal(batch.choices.length, 4);
});

await check('penalties and logit_bias are applied, bad values are 400', async () => {
  const r = await client.chat.completions.create({
    model, messages: question, max_tokens: 6, temperature: 0,
    presence_penalty: 1.5, frequency_penalty: 1, logit_bias: { 5: -100 },
  });
  assert.ok(r.usage.completion_tokens > 0);
  const e = await expectStatus(400, { model, messages: question, presence_penalty: 2.5 });
  assert.equal(e.param, 'presence_penalty');
  const e2 = await expectStatus(400, { model, messages: question, logit_bias: { x: 1 } });
  assert.match(e2.param, /^logit_bias/);
});

await check('rejected requests are HTTP 400 with OpenAI error bodies', async () => {
  const e1 = await expectStatus(400, { model, messages: question, n: 17 });
  assert.equal(e1.param, 'n');
  // Loopback image URLs are refused unless the gateway allows private addresses (SSRF).
  const e2 = await expectStatus(400, {
    model,
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://127.0.0.1:9/x.png' } }] }],
  });
  assert.match(e2.message, /allow_private_image_urls/);
  // GLM-4V-9B has no function calling.
  const e3 = await expectStatus(400, {
    model, messages: question,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
  });
  assert.equal(e3.param, 'tools');
  await expectStatus(404, { model: 'gpt-4o', messages: question });
});

console.log('all checks passed');
