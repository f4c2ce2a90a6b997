// Function calling with the official `openai` npm client on a text-only GLM-4-9B-chat model:
// tools are accepted and go into the prompt (GLM-4's own format), a past call and its result
// travel back as assistant tool_calls + a tool message, a named tool_choice (and "required"
// with one tool) always answers with that call, streamed too, and what GLM-4 cannot do
// ("required" among several tools) is a 400.
//
//   node tools_test.mjs --base_url=http://127.0.0.1:8080/v1
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.argv.find((a) => a.startsWith('--base_url=')).slice('--base_url='.length);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];

const plain = await client.chat.completions.create({ messages, max_tokens: 4, temperature: 0 });
const withTools = await client.chat.completions.create({
  messages, tools, tool_choice: 'auto', max_tokens: 4, temperature: 0,
});
assert.ok(withTools.usage.prompt_tokens > plain.usage.prompt_tokens + 50,
  `tools in the prompt: ${withTools.usage.prompt_tokens} vs ${plain.usage.prompt_tokens}`);
const choice = withTools.choices[0];
assert.ok(['stop', 'length', 'tool_calls'].includes(choice.finish_reason), choice.finish_reason);
if (choice.finish_reason === 'tool_calls') {
  assert.equal(choice.message.tool_calls[0].function.name, 'get_weather');
}
console.log('ok  tools accepted and rendered into the prompt');

const followup = await client.chat.completions.create({
  tools, max_tokens: 4, temperature: 0,
  messages: [
    ...messages,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
      function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature_c": 21}' },
  ],
});
assert.ok(followup.usage.prompt_tokens > withTools.usage.prompt_tokens);
console.log('ok  a tool call and its result as history');

const none = await client.chat.completions.create({
  messages, tools, tool_choice: 'none', max_tokens: 4, temperature: 0,
});
assert.equal(none.usage.prompt_tokens, plain.usage.prompt_tokens);
console.log('ok  tool_choice none leaves the prompt alone');

// A named function: the turn starts with its name, so the answer is a call to it whatever the
// (random-weight) model writes as arguments.
const named = await client.chat.completions.create({
  messages, tools, max_tokens: 4, temperature: 0,
  tool_choice: { type: 'function', function: { name: 'get_weather' } },
});
assert.equal(named.usage.prompt_tokens > withTools.usage.prompt_tokens, true);
assert.ok(['tool_calls', 'length'].includes(named.choices[0].finish_reason));
assert.equal(named.choices[0].message.content, null);
assert.equal(named.choices[0].message.tool_calls[0].function.name, 'get_weather');
assert.equal(typeof named.choices[0].message.tool_calls[0].function.arguments, 'string');
const stream = await client.chat.completions.create({
  messages, tools, max_tokens: 4, temperature: 0, tool_choice: 'required', stream: true,
});
let streamedName = '';
let streamedArguments = '';
let streamedContent = '';
for await (const chunk of stream) {
  const delta = chunk.choices[0]?.delta ?? {};
  streamedContent += delta.content ?? '';
  for (const call of delta.tool_calls ?? []) {
    streamedName += call.function?.name ?? '';
    streamedArguments += call.function?.arguments ?? '';
  }
}
assert.equal(streamedName, 'get_weather');
assert.equal(streamedContent, '');
assert.equal(streamedArguments, named.choices[0].message.tool_calls[0].function.arguments);
console.log('ok  a named tool_choice and "required" with one tool answer with that call');

let error;
const twoTools = [...tools, { type: 'function', function: { name: 'get_time', parameters: {} } }];
try {
  await client.chat.completions.create({
    messages, tools: twoTools, tool_choice: 'required', max_tokens: 4,
  });
} catch (e) {
  error = e;
}
assert.equal(error?.status, 400);
assert.equal(error.param, 'tool_choice');
console.log('ok  tool_choice required among several tools is a 400');
console.log('all checks passed');
