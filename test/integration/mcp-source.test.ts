import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import { createSsrfGuard } from '../../services/net/ssrf-guard';
import {
  createMcpSource,
  MCP_MAX_DESCRIPTION_CHARS,
  MCP_MAX_SCHEMA_CHARS,
  MCP_MAX_TOOLS,
  mcpAnswerLimit,
  type McpSource,
} from '../../services/tools/mcp';
import { createLogger } from '../../src/logger';
import { createRequestContextStore } from '../../src/request-context';
import { createSchemaRegistry } from '../../src/validation';
import { createManualClock } from '../support/manual-clock';

interface ListedTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

/** What the server below writes at most of one tool result, if nobody cuts it off first. */
const ENDLESS_BYTES = 48 * 1024 * 1024;

/**
 * A bare MCP server (JSON-RPC over streamable HTTP, JSON answers, no SDK) on 127.0.0.1 that
 * lists `tools` and answers every tool call with an oversized text: it writes ENDLESS_BYTES
 * unless the client hangs up first, and counts what it wrote.
 */
async function startRawMcpServer(tools: ListedTool[]): Promise<{
  port: number;
  server: Server;
  streamed: () => number;
}> {
  let streamed = 0;
  const json = (res: ServerResponse, id: unknown, result: unknown): void => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ jsonrpc: '2.0', id, result }));
  };
  const endless = (res: ServerResponse, id: unknown): void => {
    res.setHeader('content-type', 'application/json');
    res.write(
      `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[{"type":"text","text":"`,
    );
    const chunk = 'x'.repeat(64 * 1024);
    let left = ENDLESS_BYTES;
    const pump = (): void => {
      while (!res.destroyed && left > 0) {
        left -= chunk.length;
        streamed += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end('"}]}}');
    };
    res.on('close', () => res.removeAllListeners('drain'));
    pump();
  };
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    void text(req).then((body) => {
      const msg = JSON.parse(body) as { id?: unknown; method: string; params?: unknown };
      if (msg.id === undefined) {
        res.statusCode = 202;
        res.end();
      } else if (msg.method === 'initialize') {
        json(res, msg.id, {
          protocolVersion: (msg.params as { protocolVersion: string }).protocolVersion,
          capabilities: { tools: {} },
          serverInfo: { name: 'raw', version: '1' },
        });
      } else if (msg.method === 'tools/list') {
        json(res, msg.id, { tools });
      } else {
        endless(res, msg.id);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, server, streamed: () => streamed };
}

const tool = (name: string, extra: Partial<ListedTool> = {}): ListedTool => ({
  name,
  description: `The ${name} tool.`,
  inputSchema: { type: 'object', properties: {} },
  ...extra,
});

describe('MCP source (connections through the SSRF guard, bounded answers)', () => {
  let mcp: Awaited<ReturnType<typeof startRawMcpServer>>;
  let source: McpSource | undefined;
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    mcp.server.closeAllConnections();
    await new Promise<void>((r) => mcp.server.close(() => r()));
  });

  /** A source for `url` whose guard resolves names with `answers` (each call takes the next). */
  const sourceFor = (
    url: string,
    resolve: (host: string) => Promise<LookupAddress[]>,
    trustedHosts: string[] = [],
  ): McpSource =>
    createMcpSource({
      server: { name: 'raw', url },
      guard: createSsrfGuard({ allowHosts: null, trustedHosts, resolve }),
      schemas: createSchemaRegistry(),
      clock: createManualClock({ now: Date.now }),
      logger: createLogger({
        level: 'silent',
        format: 'json',
        context: createRequestContextStore(),
      }),
      refreshMs: 60_000,
      timeoutMs: 60_000,
      maxResultChars: 100,
      onFailure: () => undefined,
    });

  describe('when the server is named by a host', () => {
    it('connects through the guard’s resolver (a trusted in-cluster name)', async () => {
      mcp = await startRawMcpServer([tool('ping')]);
      const asked: string[] = [];
      source = sourceFor(
        `http://mcp.cluster.test:${mcp.port}/mcp`,
        (host) => {
          asked.push(host);
          return Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
        },
        ['mcp.cluster.test'],
      );
      await source.refresh();
      assert.equal(source.status().up, true, String(source.status().error));
      assert.ok(asked.length >= 2, 'the URL check, then each connection');
    });

    it('refuses a connection when the name resolves to loopback after the check (rebinding)', async () => {
      mcp = await startRawMcpServer([tool('ping')]);
      const answers = ['93.184.216.34', '127.0.0.1'];
      let asked = 0;
      source = sourceFor(`https://rebind.test:${mcp.port}/mcp`, () => {
        asked += 1;
        return Promise.resolve([{ address: answers.shift() ?? '127.0.0.1', family: 4 }]);
      });
      await source.refresh();
      assert.equal(source.status().up, false);
      assert.equal(asked, 2, 'the connection resolved again, and was refused');
    });
  });

  it('cuts an answer off once it passes the cap, while reading it', async () => {
    mcp = await startRawMcpServer([tool('dump')]);
    source = sourceFor(`http://127.0.0.1:${mcp.port}/mcp`, () => Promise.reject(new Error('no')), [
      '127.0.0.1',
    ]);
    await source.refresh();
    const dump = source.tools().get('raw__dump');
    assert.ok(dump, JSON.stringify(source.status()));
    await assert.rejects(dump.def.run({}, { signal: new AbortController().signal }), (err) => {
      assert.match(String((err as Error).message), /larger than \d+ bytes/);
      return true;
    });
    const limit = mcpAnswerLimit(100);
    // What the server wrote: the cap, and what the sockets' buffers held when it was cut.
    assert.ok(mcp.streamed() < limit + 16 * 1024 * 1024, String(mcp.streamed()));
  });

  it('bounds what a listing offers: the number of tools, descriptions and schemas', async () => {
    const huge = { type: 'object', description: 'y'.repeat(MCP_MAX_SCHEMA_CHARS) };
    mcp = await startRawMcpServer([
      tool('long_description', { description: 'd'.repeat(10 * MCP_MAX_DESCRIPTION_CHARS) }),
      tool('huge_schema', { inputSchema: huge }),
      ...Array.from({ length: MCP_MAX_TOOLS + 10 }, (_, i) => tool(`t${i}`)),
    ]);
    source = sourceFor(`http://127.0.0.1:${mcp.port}/mcp`, () => Promise.reject(new Error('no')), [
      '127.0.0.1',
    ]);
    await source.refresh();
    const tools = source.tools();
    assert.equal(tools.size, MCP_MAX_TOOLS);
    assert.equal(tools.has('raw__huge_schema'), false);
    const described = tools.get('raw__long_description')?.def.description ?? '';
    assert.equal(described.length, MCP_MAX_DESCRIPTION_CHARS);
  });
});
