import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchemaRegistry } from '../../src/validation';
import { createSsrfGuard, classifyAddress, SsrfError } from '../../services/net/ssrf-guard';
import { createCalculatorTool, evaluateExpression } from '../../services/tools/calculator';
import { createCurrentTimeTool } from '../../services/tools/current-time';
import { createHttpGetTool } from '../../services/tools/http-get';
import { createBuiltinTools, createToolRegistry } from '../../services/tools/registry';
import { ToolError } from '../../services/tools/types';

const ctx = () => ({ signal: new AbortController().signal });

describe('calculator tool', () => {
  const rows: Array<[string, number]> = [
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['2 ** 3 ** 2', 512],
    ['-4 + 10 % 4', -2],
    ['sqrt(16) + abs(-2)', 6],
    ['max(1, 7, 3) - min(4, 2)', 5],
    ['round(pi * 100) / 100', 3.14],
    ['log(1000)', 3],
    ['pow(2, 10)', 1024],
  ];
  for (const [expression, expected] of rows) {
    it(`evaluates ${expression} = ${expected}`, () => {
      assert.equal(evaluateExpression(expression), expected);
    });
  }

  const refused: Array<[string, RegExp]> = [
    ['process.exit(1)', /Unsupported syntax|Unknown/],
    ['constructor.constructor("return 1")()', /Unsupported syntax|Unknown function/],
    ['"a" + 1', /Only numbers/],
    ['x = 1', /Unsupported|not supported|Syntax/],
    ['1 / 0', /not a finite number/],
    ['2 ^ 3', /Use \*\* or pow/],
    ['toString(1)', /Unknown function/],
    ['1 +', /Syntax error/],
    ['sqrt(1, 2)', /takes 1 argument/],
    ['[1,2]', /Unsupported syntax/],
  ];
  for (const [expression, message] of refused) {
    it(`refuses ${expression}`, () => {
      assert.throws(
        () => evaluateExpression(expression),
        (err: unknown) => {
          assert.ok(err instanceof ToolError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  it('answers through the tool interface', async () => {
    assert.deepEqual(await createCalculatorTool().run({ expression: '6*7' }, ctx()), {
      expression: '6*7',
      result: 42,
    });
  });
});

describe('current_time tool', () => {
  const tool = createCurrentTimeTool({ now: () => Date.UTC(2026, 0, 5, 10, 30, 0) });

  it('gives the time in an IANA zone with its offset', async () => {
    const out = (await tool.run({ timezone: 'Asia/Kolkata' }, ctx())) as Record<string, string>;
    assert.equal(out.timezone, 'Asia/Kolkata');
    assert.equal(out.iso, '2026-01-05T10:30:00.000Z');
    assert.equal(out.local, '2026-01-05T16:00:00');
    assert.equal(out.utc_offset, '+05:30');
    assert.equal(out.weekday, 'Monday');
  });

  it('defaults to UTC', async () => {
    const out = (await tool.run({}, ctx())) as Record<string, string>;
    assert.equal(out.timezone, 'UTC');
    assert.equal(out.utc_offset, '+00:00');
  });

  it('refuses an unknown zone with a message for the model', async () => {
    await assert.rejects(tool.run({ timezone: 'Mars/Olympus' }, ctx()), /Unknown time zone/);
  });
});

describe('tool registry', () => {
  const schemas = createSchemaRegistry();
  const registry = createToolRegistry({
    tools: createBuiltinTools({ now: Date.now, httpAllowlist: [] }),
    schemas,
  });

  it('leaves http_get out when no host is allowlisted', () => {
    assert.deepEqual(registry.names(), ['calculator', 'current_time']);
    const withHttp = createBuiltinTools({ now: Date.now, httpAllowlist: ['example.com'] });
    assert.ok(withHttp.some((t) => t.name === 'http_get'));
  });

  it('describes tools in Ollama form', () => {
    const [tool] = registry.forOllama(['calculator', 'nope']);
    assert.equal(tool?.type, 'function');
    assert.equal(tool?.function.name, 'calculator');
    assert.deepEqual(tool?.function.parameters?.required, ['expression']);
  });

  it('explains bad arguments precisely', () => {
    assert.equal(registry.checkArguments('calculator', { expression: '1+1' }), null);
    assert.equal(registry.checkArguments('calculator', {}), 'arguments.expression is required');
    assert.match(
      registry.checkArguments('calculator', { expression: 5 }) ?? '',
      /expression must be string/,
    );
    assert.match(
      registry.checkArguments('calculator', { expression: '1', x: 1 }) ?? '',
      /arguments.x is not an allowed property/,
    );
    assert.equal(registry.checkArguments('shell', {}), 'Unknown tool "shell".');
  });
});

describe('SSRF guard', () => {
  const fakeDns: Record<string, string> = {
    'public.example': '93.184.216.34',
    'internal.example': '10.1.2.3',
    'metadata.example': '169.254.169.254',
    'loop.example': '127.0.0.1',
  };
  const resolve = (host: string) => {
    const address = fakeDns[host];
    return address
      ? Promise.resolve([{ address, family: 4 }])
      : Promise.reject(new Error('ENOTFOUND'));
  };
  const guard = createSsrfGuard({
    allowHosts: [
      'public.example',
      'internal.example',
      'metadata.example',
      'loop.example',
      '127.0.0.1',
      '10.0.0.8',
      '169.254.169.254',
      '[::1]',
      '::1',
    ],
    resolve,
  });

  it('classifies special addresses', () => {
    assert.equal(classifyAddress('127.0.0.1'), 'loopback');
    assert.equal(classifyAddress('10.0.0.8'), 'private');
    assert.equal(classifyAddress('192.168.1.1'), 'private');
    assert.equal(classifyAddress('169.254.169.254'), 'linkLocal');
    assert.equal(classifyAddress('::1'), 'loopback');
    assert.equal(classifyAddress('::ffff:127.0.0.1'), 'loopback');
    assert.equal(classifyAddress('fd00:ec2::254'), 'uniqueLocal');
    assert.equal(classifyAddress('100.100.100.200'), 'carrierGradeNat');
    assert.equal(classifyAddress('0.0.0.0'), 'unspecified');
    assert.equal(classifyAddress('93.184.216.34'), 'unicast');
  });

  const refusals: Array<[string, SsrfError['reason']]> = [
    ['https://127.0.0.1/', 'address_refused'],
    ['https://2130706433/', 'address_refused'],
    ['https://10.0.0.8/x', 'address_refused'],
    ['https://169.254.169.254/latest/meta-data/', 'address_refused'],
    ['https://[::1]/', 'address_refused'],
    ['https://internal.example/', 'address_refused'],
    ['https://metadata.example/', 'address_refused'],
    ['https://loop.example/', 'address_refused'],
    ['https://elsewhere.example/', 'host_not_allowed'],
    ['http://public.example/', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['https://user:pw@public.example/', 'credentials'],
    ['not a url', 'url'],
  ];
  for (const [url, reason] of refusals) {
    it(`refuses ${url} (${reason})`, async () => {
      await assert.rejects(guard.check(url), (err: unknown) => {
        assert.ok(err instanceof SsrfError);
        assert.equal(err.reason, reason);
        return true;
      });
    });
  }

  it('accepts https to an allowlisted public host', async () => {
    assert.equal(
      (await guard.check('https://public.example/a?b=1')).href,
      'https://public.example/a?b=1',
    );
  });

  it('lets trusted hosts use http and private addresses', async () => {
    const trusted = createSsrfGuard({ allowHosts: null, trustedHosts: ['127.0.0.1'], resolve });
    assert.equal((await trusted.check('http://127.0.0.1:9/hook')).port, '9');
    await assert.rejects(trusted.check('https://10.0.0.8/'), /private/);
  });

  it('refuses a private address at connect time (DNS rebinding)', async () => {
    const answers = ['93.184.216.34', '10.0.0.1'];
    const rebinding = createSsrfGuard({
      allowHosts: ['flip.example'],
      resolve: () => Promise.resolve([{ address: answers.shift() ?? '10.0.0.1', family: 4 }]),
    });
    await rebinding.check('https://flip.example/');
    const err = await new Promise<Error | null>((resolve) =>
      rebinding.lookup('flip.example', { all: false }, (e) => resolve(e)),
    );
    assert.match(String(err?.message), /private address/);
  });
});

describe('http_get tool', () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/hello') {
        res.setHeader('content-type', 'text/plain');
        res.end('hello world');
      } else if (req.url === '/big') {
        res.setHeader('content-type', 'text/plain');
        res.end('x'.repeat(5000));
      } else if (req.url === '/bounce') {
        res.writeHead(302, { location: 'https://169.254.169.254/latest/meta-data/' });
        res.end();
      } else if (req.url === '/local-bounce') {
        res.writeHead(301, { location: '/hello' });
        res.end();
      } else {
        res.setHeader('content-type', 'application/octet-stream');
        res.end(Buffer.from([0, 1, 2]));
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const allowlisted = createHttpGetTool({
    guard: createSsrfGuard({ allowHosts: ['example.com'] }),
  });

  for (const url of [
    'https://127.0.0.1/',
    'https://10.1.1.1/',
    'https://169.254.169.254/latest/meta-data/',
    'https://evil.example.net/',
  ]) {
    it(`refuses ${url}`, async () => {
      await assert.rejects(allowlisted.run({ url }, ctx()), (err: unknown) => {
        assert.ok(err instanceof ToolError);
        assert.match(err.message, /^Refused: /);
        assert.equal(err.retryable, false);
        return true;
      });
    });
  }

  // The operator trusts 127.0.0.1 here so the fetching logic can be checked against a local server.
  const local = createHttpGetTool({
    guard: createSsrfGuard({ allowHosts: [], trustedHosts: ['127.0.0.1'] }),
    maxBytes: 1000,
  });

  it('fetches text from an allowed host', async () => {
    const out = (await local.run({ url: `${base}/hello` }, ctx())) as Record<string, unknown>;
    assert.equal(out.status, 200);
    assert.equal(out.body, 'hello world');
    assert.equal(out.truncated, false);
  });

  it('cuts the body at the size limit', async () => {
    const out = (await local.run({ url: `${base}/big` }, ctx())) as Record<string, unknown>;
    assert.equal((out.body as string).length, 1000);
    assert.equal(out.truncated, true);
  });

  it('follows a redirect only after checking its target', async () => {
    const ok = (await local.run({ url: `${base}/local-bounce` }, ctx())) as Record<string, unknown>;
    assert.equal(ok.body, 'hello world');
    await assert.rejects(
      local.run({ url: `${base}/bounce` }, ctx()),
      /Refused: .*169\.254\.169\.254/,
    );
  });

  it('refuses binary content', async () => {
    await assert.rejects(local.run({ url: `${base}/bin` }, ctx()), /not text/);
  });
});
