/**
 * The reference the gateway is measured against: the least a proxy in front of Ollama can do.
 * `node:http` in, `undici` out over a keep-alive pool; every POST is forwarded as it is to the
 * simulator's same path (`/api/chat`, `/v1/chat/completions`) and the answer piped back chunk
 * by chunk (streamed or not). No
 * parsing, no validation, no auth, no metrics. Measured in the same run as the gateway, its CPU
 * per request turns the host's drift into a ratio that does not drift.
 *
 * Prints one JSON line `{"url":…}` once listening. Usage: node dist/bench/bare-proxy.js <simUrl>
 */
import http from 'node:http';
import { Pool } from 'undici';
import { listenAndAnnounce } from './announce';

function main(): void {
  const upstream = process.argv[2];
  if (!upstream) throw new Error('usage: bare-proxy <simulator url>');
  const pool = new Pool(upstream, { connections: 256, pipelining: 1 });
  const server = http.createServer((req, res) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    pool
      .request({
        method: 'POST',
        path: req.url ?? '/api/chat',
        headers: { 'content-type': 'application/json' },
        body: req,
        signal: abort.signal,
      })
      .then(({ statusCode, headers, body }) => {
        const type = headers['content-type'];
        res.writeHead(statusCode, typeof type === 'string' ? { 'content-type': type } : {});
        body.on('data', (chunk: Buffer) => res.write(chunk));
        body.on('end', () => res.end());
        body.on('error', () => res.destroy());
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
  });
  listenAndAnnounce(server);
}

main();
