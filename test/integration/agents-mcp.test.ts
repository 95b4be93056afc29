import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import request from 'supertest';
import { z } from 'zod';
import type { AgentRun } from '../../services/agents/types';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';

const MODEL = 'llama3.2:3b';
const TOKEN = 'Bearer mcp-secret-token';

/**
 * An MCP server written with the official SDK, streamable HTTP on loopback (stateless: one
 * server and transport per request). It refuses requests without the expected Authorization.
 */
async function startMcpServer(): Promise<{ url: string; server: Server; calls: string[] }> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    if (req.headers.authorization !== TOKEN) {
      res.statusCode = 401;
      res.end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const mcp = new McpServer({ name: 'orders', version: '1.0.0' });
      mcp.registerTool(
        'lookup_order',
        { description: 'Looks an order up.', inputSchema: { order_id: z.string() } },
        ({ order_id }) => {
          calls.push(order_id);
          return {
            content: [{ type: 'text', text: `order ${order_id}: shipped ${'x'.repeat(300)}` }],
          };
        },
      );
      mcp.registerTool(
        'delete_order',
        { description: 'Deletes an order.', inputSchema: { order_id: z.string() } },
        () => ({ content: [{ type: 'text', text: 'deleted' }] }),
      );
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      res.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      void mcp
        .connect(transport)
        .then(() =>
          transport.handleRequest(req, res, body ? (JSON.parse(body) as unknown) : undefined),
        );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    server,
    calls,
  };
}

describe('MCP tool servers (official SDK, streamable HTTP on loopback)', () => {
  let h: AgentsHarness;
  let mcp: Awaited<ReturnType<typeof startMcpServer>>;
  let dir: string;

  beforeEach(async () => {
    mcp = await startMcpServer();
    dir = mkdtempSync(path.join(os.tmpdir(), 'mcp-'));
    const headers = path.join(dir, 'headers');
    writeFileSync(headers, `Authorization: ${TOKEN}\n`);
    const file = path.join(dir, 'agents.yaml');
    writeFileSync(
      file,
      [
        'mcp_servers:',
        '  - name: orders',
        `    url: ${mcp.url}`,
        `    headers_file: ${headers}`,
        '    tools: [lookup_order]',
        'agents:',
        '  - name: support',
        '    system: You answer questions about orders.',
        '    mcp_servers: [orders]',
        '',
      ].join('\n'),
    );
    h = await startAgentsHarness({
      env: {
        AGENTS_FILE: file,
        MCP_ALLOWLIST: '127.0.0.1',
        MCP_REFRESH_INTERVAL_MS: '60000',
        MCP_MAX_RESULT_CHARS: '100',
      },
    });
    h.agents.start();
    await h.agents.refreshMcp();
    assert.equal(h.agents.mcpStatus()[0]?.up, true, JSON.stringify(h.agents.mcpStatus()));
  });
  afterEach(async () => {
    await h.close();
    mcp.server.closeAllConnections();
    await new Promise<void>((r) => mcp.server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const lastChat = (): { tools?: Array<{ function: { name: string } }> } =>
    h.sim.requests
      .filter(
        (r) =>
          r.path === '/api/chat' &&
          ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
      )
      .map((r) => r.body as { tools?: Array<{ function: { name: string } }> })
      .at(-1) ?? {};

  it('offers the allowlisted tools, calls them and feeds the size-capped result to the model; a stopped server leaves the run going and warns in /health/detailed', async () => {
    assert.deepEqual(h.agents.mcpStatus()[0]?.tools, ['orders__lookup_order']);
    h.sim.script(
      MODEL,
      {
        tool_calls: [
          { function: { name: 'orders__lookup_order', arguments: { order_id: '1234' } } },
        ],
      },
      { content: 'Order 1234 has shipped.' },
    );
    const res = await request(h.url)
      .post('/agents/run')
      .send({ agent: 'support', input: 'Where is order 1234?' })
      .expect(200);
    const run = res.body as AgentRun;
    assert.equal(run.status, 'completed');
    assert.deepEqual(mcp.calls, ['1234']);
    const tool = run.output.messages.find((m) => m.role === 'tool');
    const result = (JSON.parse(String(tool?.content)) as { result: string }).result;
    assert.match(result, /^order 1234: shipped x+… \[\d+ more characters\]$/);
    assert.ok(result.length < 140, 'the result is capped');
    assert.deepEqual(
      (
        h.sim.requests.find((r) => ((r.body as { tools?: unknown[] }).tools ?? []).length > 0)
          ?.body as { tools: Array<{ function: { name: string } }> }
      ).tools.map((t) => t.function.name),
      ['orders__lookup_order'],
    );

    // The server goes away: the next refresh marks it down.
    mcp.server.closeAllConnections();
    await new Promise<void>((r) => mcp.server.close(() => r()));
    h.clock.advance(60_000);
    await h.agents.refreshMcp();
    assert.equal(h.agents.mcpStatus()[0]?.up, false);

    const detailed = await request(h.url).get('/health/detailed').expect(200);
    const body = detailed.body as {
      status: string;
      checks: Array<{ name: string; ok: boolean; critical: boolean; reason: string }>;
    };
    const check = body.checks.find((c) => c.name === 'mcp_servers');
    assert.equal(check?.ok, false);
    assert.equal(check?.critical, false);
    assert.match(check?.reason ?? '', /orders/);
    assert.deepEqual(h.schemas.check('health-detailed.response', body, 'response'), []);
    const ready = await request(h.url).get('/health/ready');
    assert.ok(!JSON.stringify(ready.body).includes('mcp_servers'), 'readiness ignores MCP');
    const metrics = await request(h.url).get('/metrics').expect(200);
    assert.match(metrics.text, /mcp_server_failures_total\{server="orders"\} [1-9]/);

    // The run goes on without the server's tools.
    h.sim.script(MODEL, { content: 'I cannot look orders up right now.' });
    const later = (
      await request(h.url)
        .post('/agents/run')
        .send({ agent: 'support', input: 'Where is order 1234?' })
        .expect(200)
    ).body as AgentRun;
    assert.equal(later.status, 'completed');
    assert.equal(lastChat().tools, undefined);
  });

  it('refuses an agent naming an MCP server AGENTS_FILE does not define', async () => {
    await request(h.url)
      .post('/agents/run')
      .send({ agent: { system: 'x', mcp_servers: ['nope'] }, input: 'hi' })
      .expect(400);
  });
});
