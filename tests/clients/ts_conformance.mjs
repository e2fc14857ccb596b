// Conformance of the official Anthropic TypeScript SDK (@anthropic-ai/sdk) against qgate.
//
// The same checks as py_conformance.py, through the JS SDK's own helpers: the message
// object, `messages.stream()` events (text, inputJson, thinking), long tool names,
// countTokens, models.list pagination, and which error class each status becomes, with
// `retry-after` honoured. Gateways come from the same environment variables (README.md).
// Prints one line per check, then `N passed, M failed` (`, K skipped`); exit code 1 on any
// failure.

import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';

const MODEL = 'claude-sonnet-4-6';
const API_KEY = process.env.QGATE_API_KEY || 'qgate-conformance';
const STRICT = process.env.QGATE_STRICT === '1';
const TOOL_INPUT = { path: '/tmp/x', n: 3 };
// Over Amazon Q's 64-character limit, so the gateway must shorten it upstream and map it back.
const LONG_TOOL = 'mcp__qgate_conformance_server__read_a_file_from_the_workspace_with_a_long_name';
const PROMPT_TOO_LONG = /^prompt is too long: (\d+) tokens > (\d+) maximum$/;

class Skip extends Error {}

function base(name, fallback) {
  const url = process.env[name] || (fallback ? process.env[fallback] : undefined);
  if (!url) throw new Skip(`${name} is not set`);
  return url;
}

function client(name = 'QGATE_BASE_URL', fallback = undefined, opts = {}) {
  return new Anthropic({
    baseURL: base(name, fallback),
    apiKey: API_KEY,
    maxRetries: 0,
    timeout: 60_000,
    ...opts,
  });
}

function check(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

const same = isDeepStrictEqual;

// The simulator plays the model, so its `[[sim tool=...]]` script names a tool as the model
// sees it: qgate's deterministic rule (qgate_translate::tool_names) keeps valid names and
// turns others into the sanitised prefix, `_`, and the first 8 hex digits of their SHA-256.
function upstreamToolName(name) {
  if (name.length <= 64 && /^[A-Za-z0-9_-]+$/.test(name)) return name;
  const digest = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const prefix = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64 - 1 - digest.length);
  return `${prefix}_${digest}`;
}

const toolSpec = (name) => ({
  name,
  description: 'Reads part of a file.',
  input_schema: {
    type: 'object',
    properties: { path: { type: 'string' }, n: { type: 'integer' } },
    required: ['path'],
  },
});

const toolPrompt = (name) =>
  `Read it. [[sim tool=${upstreamToolName(name)} input=${JSON.stringify(TOOL_INPUT)}]]`;

async function expectError(cls, promise) {
  try {
    await promise;
  } catch (e) {
    check(e instanceof cls, `${cls.name} expected, got ${e?.constructor?.name}: ${e?.message}`);
    return e;
  }
  throw new Error(`no ${cls.name}`);
}

// --- checks ------------------------------------------------------------------------------

async function createText() {
  const msg = await client().messages.create({
    model: MODEL,
    max_tokens: 256,
    messages: [{ role: 'user', content: 'Hello there [[sim words=7]]' }],
  });
  check(msg.id.startsWith('msg_'), `id ${msg.id}`);
  check(msg.type === 'message' && msg.role === 'assistant', `${msg.type} ${msg.role}`);
  check(msg.model === MODEL, `model echoed: ${msg.model}`);
  check(msg.content[0].type === 'text', `first block ${msg.content[0].type}`);
  check(msg.content[0].text.split(/\s+/).filter(Boolean).length === 7, `7 words: ${msg.content[0].text}`);
  check(msg.stop_reason === 'end_turn', `stop_reason ${msg.stop_reason}`);
  check(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0, JSON.stringify(msg.usage));
  check(Boolean(msg._request_id), `_request_id ${msg._request_id}`);
}

async function streamText() {
  let text = '';
  const stream = client()
    .messages.stream({
      model: MODEL,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'Stream please [[sim words=12 chunk=3]]' }],
    })
    .on('text', (delta) => {
      text += delta;
    });
  const final = await stream.finalMessage();
  check(text.split(/\s+/).filter(Boolean).length === 12, `12 streamed words: ${text}`);
  check(same(final.content.map((b) => b.type), ['text']), JSON.stringify(final.content));
  check(final.content[0].text === text, 'on(text) accumulation equals the final text');
  check(final.stop_reason === 'end_turn', `stop_reason ${final.stop_reason}`);
  check(final.usage.input_tokens > 0 && final.usage.output_tokens > 0, JSON.stringify(final.usage));
  check(Boolean(stream.request_id), 'stream.request_id');
}

async function streamTool(name) {
  const fragments = [];
  let snapshot;
  const final = await client()
    .messages.stream({
      model: MODEL,
      max_tokens: 256,
      tools: [toolSpec(name)],
      messages: [{ role: 'user', content: toolPrompt(name) }],
    })
    .on('inputJson', (partial, jsonSnapshot) => {
      fragments.push(partial);
      snapshot = jsonSnapshot;
    })
    .finalMessage();
  check(fragments.length >= 1, 'inputJson events were streamed');
  check(same(JSON.parse(fragments.join('')), TOOL_INPUT), `fragments ${JSON.stringify(fragments)}`);
  check(same(snapshot, TOOL_INPUT), `last snapshot ${JSON.stringify(snapshot)}`);
  const uses = final.content.filter((b) => b.type === 'tool_use');
  check(uses.length === 1, `one tool_use block: ${JSON.stringify(final.content)}`);
  check(uses[0].name === name, `tool name ${uses[0].name}`);
  check(same(uses[0].input, TOOL_INPUT), `input ${JSON.stringify(uses[0].input)}`);
  check(Boolean(uses[0].id), 'tool_use id');
  check(final.stop_reason === 'tool_use', `stop_reason ${final.stop_reason}`);
  return final;
}

async function streamToolUse() {
  await streamTool('read_file');
}

async function longToolNameRoundTrip() {
  check(LONG_TOOL.length > 64, 'the name is over the upstream limit');
  const first = await streamTool(LONG_TOOL);
  const use = first.content.find((b) => b.type === 'tool_use');
  const second = await client().messages.create({
    model: MODEL,
    max_tokens: 256,
    tools: [toolSpec(LONG_TOOL)],
    messages: [
      { role: 'user', content: toolPrompt(LONG_TOOL) },
      { role: 'assistant', content: first.content },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: use.id, content: 'qgate-long-ok' }],
      },
    ],
  });
  const text = second.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
  check(text.includes('qgate-long-ok'), `the reply quotes the tool result: ${text}`);
  check(second.stop_reason === 'end_turn', `stop_reason ${second.stop_reason}`);
}

async function streamThinking() {
  let thinkingDeltas = 0;
  const final = await client()
    .messages.stream({
      model: MODEL,
      max_tokens: 4000,
      thinking: { type: 'enabled', budget_tokens: 2000 },
      messages: [{ role: 'user', content: 'Think first, then answer.' }],
    })
    .on('thinking', () => {
      thinkingDeltas += 1;
    })
    .finalMessage();
  const types = final.content.map((b) => b.type);
  check(types[0] === 'thinking', `a thinking block comes first: ${types}`);
  check(types.includes('text'), `a text block follows: ${types}`);
  check(final.content[0].thinking.trim() !== '', 'thinking text is not empty');
  check(thinkingDeltas >= 1, 'thinking deltas were streamed');
  for (const b of final.content) {
    if (b.type === 'text') check(!b.text.includes('thinking>'), `tag text leaked: ${b.text}`);
  }
}

async function countTokens() {
  const c = client();
  const small = await c.messages.countTokens({
    model: MODEL,
    messages: [{ role: 'user', content: 'How many tokens is this?' }],
  });
  const large = await c.messages.countTokens({
    model: MODEL,
    messages: [{ role: 'user', content: 'How many tokens is this? '.repeat(200) }],
  });
  check(Number.isInteger(small.input_tokens) && small.input_tokens > 0, JSON.stringify(small));
  check(large.input_tokens > small.input_tokens, `${large.input_tokens} > ${small.input_tokens}`);
}

async function modelsList() {
  const c = client();
  const everything = await c.models.list({ limit: 100 });
  const ids = everything.data.map((m) => m.id);
  check(ids.length > 0, 'the list is not empty');
  for (const m of everything.data) {
    check(m.type === 'model' && m.display_name && m.created_at, `model shape ${JSON.stringify(m)}`);
  }
  check(everything.first_id === ids[0] && everything.last_id === ids.at(-1), 'first_id/last_id');
  for (const wanted of ['claude-opus-4-8', 'claude-sonnet-5', 'claude-haiku-4-5-20251001']) {
    check(ids.includes(wanted), `${wanted} (a Claude Code model) is listed: ${ids}`);
  }
  check((await c.models.retrieve('claude-opus-4-8')).id === 'claude-opus-4-8', 'models.retrieve');
  const page = await c.models.list({ limit: 2 });
  check(page.data.length <= 2, `limit=2 honoured: got ${page.data.length} models`);
  check(page.has_more === ids.length > 2, `has_more ${page.has_more}`);
  const walked = [];
  for await (const m of c.models.list({ limit: 2 })) {
    // The SDK follows has_more / last_id; a gateway that ignores after_id would page forever.
    walked.push(m.id);
    if (walked.length > 2 * ids.length) break;
  }
  check(same(walked, ids), `auto-pagination visits every model once: ${walked}`);
}

async function errorMissingMaxTokens() {
  const e = await expectError(
    Anthropic.BadRequestError,
    client().messages.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
  );
  check(e.status === 400 && e.type === 'invalid_request_error', `${e.status} ${e.type}`);
  check(Boolean(e.requestID), 'requestID on an error');
}

async function errorPromptTooLong() {
  // Over the upstream's 600 000-character limit for one message, under the body limit.
  const huge = 'lorem ipsum dolor sit amet '.repeat(25_000);
  const e = await expectError(
    Anthropic.BadRequestError,
    client().messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: huge }] }),
  );
  const match = PROMPT_TOO_LONG.exec(e.apiMessage ?? '');
  check(match !== null, `exact wording: ${e.apiMessage}`);
  check(Number(match[1]) > Number(match[2]), `N > M in ${e.apiMessage}`);
  check(e.type === 'invalid_request_error', e.type);
}

async function errorWrongKey() {
  if (!process.env.QGATE_API_KEY) throw new Skip('QGATE_API_KEY is not set (the gateway accepts any key)');
  const e = await expectError(
    Anthropic.AuthenticationError,
    client('QGATE_BASE_URL', undefined, { apiKey: 'sk-wrong-key' }).messages.create({
      model: MODEL,
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hi' }],
    }),
  );
  check(e.status === 401 && e.type === 'authentication_error', `${e.status} ${e.type}`);
  check(!JSON.stringify(e.error).includes('sk-wrong-key'), 'the key is not echoed');
}

async function errorUnknownModel() {
  const e = await expectError(
    Anthropic.NotFoundError,
    client().messages.create({ model: 'gpt-4o', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  );
  check(e.status === 404 && e.type === 'not_found_error', `${e.status} ${e.type}`);
}

async function errorBodyTooLarge() {
  const e = await expectError(
    Anthropic.ContentTooLargeError,
    client('QGATE_SMALL_BODY_URL').messages.create({
      model: MODEL,
      max_tokens: 16,
      messages: [{ role: 'user', content: 'x'.repeat(20_000) }],
    }),
  );
  check(e.status === 413 && e.type === 'request_too_large', `${e.status} ${e.type}`);
}

async function errorOverloaded() {
  const e = await expectError(
    Anthropic.OverloadedError,
    client('QGATE_OVERLOAD_URL', 'QGATE_BASE_URL').messages.create({
      model: MODEL,
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hi [[sim error=unavailable]]' }],
    }),
  );
  check(e instanceof Anthropic.InternalServerError, 'OverloadedError is a 5xx class');
  check(e.status === 529 && e.type === 'overloaded_error', `${e.status} ${e.type}`);
  check(e.headers.get('retry-after') !== null, 'retry-after on a 529');
}

async function errorMidstream() {
  let received = '';
  const stream = client('QGATE_MIDSTREAM_URL', 'QGATE_BASE_URL')
    .messages.stream({
      model: MODEL,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'go [[sim error=midstream_exception]]' }],
    })
    .on('text', (delta) => {
      received += delta;
    });
  const e = await expectError(Anthropic.APIError, stream.finalMessage());
  check(e.status === undefined, `raised from inside a 200 stream (status ${e.status})`);
  check(typeof e.type === 'string' && e.type.length > 0, `error type ${e.type}`);
  check(received.trim() !== '', 'text before the error reached the client');
}

async function errorThrottledHonoursRetryAfter() {
  const attempts = []; // {sent, status, retryAfter}
  const recordingFetch = async (url, init) => {
    const sent = performance.now();
    const response = await fetch(url, init);
    attempts.push({ sent, status: response.status, retryAfter: response.headers.get('retry-after') });
    return response;
  };
  const c = client('QGATE_THROTTLE_URL', undefined, { maxRetries: 1, fetch: recordingFetch });
  const e = await expectError(
    Anthropic.RateLimitError,
    c.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi [[sim error=throttle]]' }] }),
  );
  check(e.type === 'rate_limit_error', e.type);
  check(attempts.length === 2, `two attempts with maxRetries=1: ${JSON.stringify(attempts)}`);
  const [first, second] = attempts;
  check(first.status === 429 && first.retryAfter !== null, `first answer 429 with retry-after: ${JSON.stringify(first)}`);
  const waited = (second.sent - first.sent) / 1000;
  check(waited >= 0.9 * Number(first.retryAfter), `waited ${waited.toFixed(2)}s for retry-after ${first.retryAfter}`);
  console.log(`  (429: retry-after ${first.retryAfter}s, the SDK waited ${waited.toFixed(1)}s)`);
}

const CHECKS = [
  createText,
  streamText,
  streamToolUse,
  longToolNameRoundTrip,
  streamThinking,
  countTokens,
  modelsList,
  errorMissingMaxTokens,
  errorPromptTooLong,
  errorWrongKey,
  errorUnknownModel,
  errorBodyTooLarge,
  errorOverloaded,
  errorMidstream,
];
// Waits out a retry-after (tens of seconds), so it runs beside the others.
const SLOW_CHECKS = [errorThrottledHonoursRetryAfter];

async function run(fn) {
  try {
    await fn();
    return ['pass', ''];
  } catch (e) {
    if (e instanceof Skip) return [STRICT ? 'fail' : 'skip', e.message];
    return ['fail', e instanceof Error && !e.message.startsWith('assertion failed') ? e.stack : e.message];
  }
}

async function main() {
  const { VERSION } = await import('@anthropic-ai/sdk/version');
  console.log(`@anthropic-ai/sdk ${VERSION} against ${process.env.QGATE_BASE_URL}`);
  const slow = SLOW_CHECKS.map((fn) => run(fn));
  const results = new Map();
  for (const fn of CHECKS) results.set(fn, await run(fn));
  const slowResults = await Promise.all(slow);
  SLOW_CHECKS.forEach((fn, i) => results.set(fn, slowResults[i]));
  const counts = { pass: 0, fail: 0, skip: 0 };
  for (const [fn, [status, detail]] of results) {
    counts[status] += 1;
    console.log(`${status.toUpperCase().padEnd(4)} ${fn.name}${detail ? `: ${detail}` : ''}`);
  }
  let summary = `${counts.pass} passed, ${counts.fail} failed`;
  if (counts.skip) summary += `, ${counts.skip} skipped`;
  console.log(summary);
  process.exitCode = counts.fail ? 1 : 0;
}

await main();
