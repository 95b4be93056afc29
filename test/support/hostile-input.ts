import fc from 'fast-check';
import type { RunningApp } from './build-app';
import { bearer, send, type SimpleResponse } from './security';

/** One hostile request: raw body bytes and the headers that go with them. */
export interface HostileRequest {
  kind: string;
  body: Buffer;
  headers: Record<string, string>;
}

const JSON_TYPE = 'application/json';

/** Field names the real request schemas use, so wrong types land on real fields. */
const FIELDS = [
  'input',
  'messages',
  'model',
  'agent',
  'agent_id',
  'tools',
  'metadata',
  'stream',
  'background',
  'limits',
  'name',
  'insecure',
  'options',
  'keep_alive',
  'webhook',
  'response_format',
];

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];

const json = (
  kind: string,
  text: string,
  headers: Record<string, string> = {},
): HostileRequest => ({
  kind,
  body: Buffer.from(text, 'utf8'),
  headers: { 'content-type': JSON_TYPE, ...headers },
});

const hugeNumber = fc.constantFrom(
  '1e400',
  '-1e400',
  '9'.repeat(400),
  '-0',
  `0.${'0'.repeat(500)}1`,
  '1.7976931348623157e308',
  '9007199254740993',
  '1e-400',
);

/** Objects keyed by real field names with values of any JSON type. */
const wrongTypes = fc
  .dictionary(fc.constantFrom(...FIELDS), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 })
  .map((o) => json('wrong-types', JSON.stringify(o)));

const randomJson = fc.jsonValue({ maxDepth: 4 }).map((v) => json('random-json', JSON.stringify(v)));

const numbers = fc
  .tuple(fc.constantFrom(...FIELDS), hugeNumber)
  .map(([field, n]) => json('huge-number', `{"${field}":${n}}`));

const deepNesting = fc
  .tuple(fc.integer({ min: 50, max: 100_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    json(
      'deep-nesting',
      arrays
        ? `${'['.repeat(depth)}${']'.repeat(depth)}`
        : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    ),
  );

/**
 * A body that is otherwise valid with one field nested deep (a JSON schema of schemas, options
 * of options): JSON.parse takes any depth, the code that walks the body afterwards recurses.
 */
const deepInField = fc
  .tuple(fc.constantFrom(...FIELDS, 'options', 'format'), fc.integer({ min: 60, max: 20_000 }))
  .map(([field, depth]) =>
    json(
      'deep-in-field',
      `{"model":"llama3.2:3b","input":"x","messages":[{"role":"user","content":"x"}],` +
        `"${field}":${'{"a":['.repeat(depth)}1${']}'.repeat(depth)}}`,
    ),
  );

/** `__proto__` / `constructor` / `prototype` keys, nested and beside real fields. */
const protoKeys = fc
  .tuple(
    fc.constantFrom(...PROTO_KEYS),
    fc.constantFrom(...PROTO_KEYS, 'polluted'),
    fc.jsonValue({ maxDepth: 1 }),
    fc.constantFrom(...FIELDS),
  )
  .map(([a, b, v, field]) =>
    json(
      'proto-keys',
      `{"${field}":{"${a}":{"${b}":${JSON.stringify(v)},"polluted":"yes"}},"${a}":{"polluted":"yes","isAdmin":true,"role":"admin"}}`,
    ),
  );

/** A JSON string holding bytes that are not valid UTF-8 (lone continuation bytes, overlongs, surrogates). */
const invalidUtf8 = fc
  .tuple(fc.constantFrom(...FIELDS), fc.uint8Array({ minLength: 1, maxLength: 64 }))
  .map(([field, bytes]) => {
    const bad = Buffer.from([
      0xc0,
      0xaf,
      0xed,
      0xa0,
      0x80,
      0xff,
      0xfe,
      ...bytes.filter((b) => b !== 0x22 && b !== 0x5c && b >= 0x20),
    ]);
    return {
      kind: 'invalid-utf8',
      body: Buffer.concat([Buffer.from(`{"${field}":"`), bad, Buffer.from('"}')]),
      headers: { 'content-type': JSON_TYPE },
    };
  });

/** Strings around the 1 MB body limit (just under, at, just over). */
const bigStrings = fc
  .tuple(fc.constantFrom(...FIELDS), fc.integer({ min: -64, max: 64 }))
  .map(([field, delta]) =>
    json('big-string', `{"${field}":"${'a'.repeat(1024 * 1024 - 16 + delta)}"}`),
  );

const wrongContentType = fc
  .tuple(
    fc.constantFrom(
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/json; charset=latin1',
      'application/json; charset=utf-7',
      'application/jsonx',
      'json',
      '*/*',
      'application/json, text/plain',
    ),
    fc.jsonValue({ maxDepth: 2 }),
  )
  .map(([type, v]) => ({
    kind: 'content-type',
    body: Buffer.from(JSON.stringify(v)),
    headers: { 'content-type': type },
  }));

const encodings = fc
  .tuple(
    fc.constantFrom('gzip', 'deflate', 'br', 'compress', 'identity, gzip', 'x-unknown'),
    fc.uint8Array({ maxLength: 64 }),
  )
  .map(([enc, bytes]) => ({
    kind: 'content-encoding',
    body: Buffer.from(bytes),
    headers: { 'content-type': JSON_TYPE, 'content-encoding': enc },
  }));

const malformed = fc
  .oneof(
    fc.string({ maxLength: 200 }),
    fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1) || '{'),
    fc.constantFrom(
      '{',
      '{"a":}',
      "{'a':1}",
      'NaN',
      'undefined',
      '{"a":1,}',
      '\u0000',
      '[1,2',
      '"\\ud800"',
    ),
  )
  .map((text) => json('malformed', text));

/** Model names of Ollama's shape: installed, pullable, or made up (valid but unknown). */
const modelNames = fc.oneof(
  fc.constantFrom('llama3.2:3b', 'qwen3:8b', 'smollm2:135m', 'library/qwen3:0.6b', 'LLAMA3.2:3B'),
  fc.stringMatching(
    /^[a-z0-9][a-z0-9._-]{0,20}(\/[a-z0-9][a-z0-9._-]{0,12})?(:[a-z0-9][a-z0-9._-]{0,8})?$/,
  ),
);

/** A JSON object written by hand, so `__proto__` stays an ordinary key in the text. */
const objectText = (entries: Array<[string, unknown]>): string =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;

/**
 * Bodies of the right shape that may well be VALID: a switch or pull to a random model, a run
 * with random input and metadata (`__proto__` keys among them). Hostile callers send these
 * too; they must be answered like any valid request (quickly, never a 5xx).
 */
const nearValid = fc
  .oneof(
    fc
      .tuple(modelNames, fc.option(fc.constantFrom('5m', '0', '-1', '10s'), { nil: undefined }))
      .map(([model, keep]) =>
        objectText(
          keep === undefined
            ? [['model', model]]
            : [
                ['model', model],
                ['keep_alive', keep],
              ],
        ),
      ),
    fc
      .tuple(
        fc.string({ maxLength: 200, unit: 'grapheme' }),
        fc.constantFrom<Array<[string, unknown]>>([], [['stream', true]], [['background', true]]),
        fc.array(
          fc.tuple(
            fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ minLength: 1, maxLength: 10 })),
            fc.string({ maxLength: 20 }),
          ),
          { maxLength: 4 },
        ),
      )
      .map(([input, mode, meta]) =>
        objectText([['input', input], ...mode, ['metadata', JSON.parse(objectText(meta))]]),
      ),
  )
  .map((text) => json('near-valid', text));

/** Header values a well-behaved client library will still send: printable, latin-1, long. */
const requestIds = fc.oneof(
  fc.string({
    unit: fc.constantFrom(
      'a',
      '<',
      '>',
      '"',
      "'",
      ' ',
      '%',
      ';',
      ':',
      ',',
      '\t',
      '-',
      '.',
      '_',
      'é',
    ),
    maxLength: 200,
  }),
  fc.constantFrom(
    '../../etc/passwd',
    '<script>alert(1)</script>',
    'a'.repeat(129),
    'ok-id.1_2',
    '%0d%0aSet-Cookie:x=1',
  ),
);

/** fast-check prints counterexamples with this: a short summary, not a 1 MB body. */
function summarised(req: HostileRequest): HostileRequest {
  const preview = req.body.subarray(0, 120).toString('latin1');
  return Object.assign(
    { ...req },
    {
      [fc.toStringMethod]: () =>
        `${req.kind} ${JSON.stringify(req.headers)} ${req.body.length} bytes: ${JSON.stringify(preview)}`,
    },
  );
}

/** Every hostile body, each with a hostile X-Request-ID now and then. */
export function hostileRequests(): fc.Arbitrary<HostileRequest> {
  return fc
    .tuple(
      fc.oneof(
        { arbitrary: wrongTypes, weight: 6 },
        { arbitrary: nearValid, weight: 3 },
        { arbitrary: randomJson, weight: 4 },
        { arbitrary: protoKeys, weight: 4 },
        { arbitrary: numbers, weight: 2 },
        { arbitrary: deepNesting, weight: 2 },
        { arbitrary: deepInField, weight: 2 },
        { arbitrary: invalidUtf8, weight: 2 },
        { arbitrary: malformed, weight: 3 },
        { arbitrary: wrongContentType, weight: 2 },
        { arbitrary: encodings, weight: 1 },
        { arbitrary: bigStrings, weight: 1 },
      ),
      fc.option(requestIds, { freq: 3 }),
    )
    .map(([req, id]) =>
      summarised(id === null ? req : { ...req, headers: { ...req.headers, 'x-request-id': id } }),
    );
}

/** Raw header lines carrying bytes no client library sends: CR, LF, NUL, other controls. */
export function injectedHeaderValues(): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.string({ maxLength: 20 }),
      fc.constantFrom(
        '\r\nSet-Cookie: a=1',
        '\nX-Evil: 1',
        '\u0000',
        '\u0007',
        '\r',
        '\u007f',
        '\r\n\r\nGET / HTTP/1.1',
      ),
      fc.string({ maxLength: 20 }),
    )
    .map(([a, evil, b]) => `${a.replace(/[\r\n]/g, '')}${evil}${b.replace(/[\r\n]/g, '')}`);
}

/** POSTs one hostile request with `key`; the answer and a label that says what was sent. */
export async function postHostile(
  running: RunningApp,
  path: string,
  key: string,
  hostile: HostileRequest,
): Promise<{ res: SimpleResponse; label: string }> {
  const res = await send(running, 'POST', path, {
    headers: { ...bearer(key), ...hostile.headers },
    body: hostile.body,
  });
  return { res, label: `${hostile.kind}: ${res.status} ${res.text.slice(0, 200)}` };
}
