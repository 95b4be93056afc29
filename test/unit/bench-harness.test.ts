import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import {
  listeningPorts,
  parseListeningPorts,
  parseProcIo,
  parseProcStat,
  parseStatusKb,
  readCpuMicros,
  readMemory,
  readSyscalls,
  socketInodes,
} from '../../bench/proc';
import { parseMemory } from '../../bench/cgroup';
import { CONCERNS, parseLevel } from '../../bench/floor-server';
import { gcReport, sumGcLines } from '../../bench/gc-trace';
import { checkBudget, type Summary } from '../../bench/report';
import { createNdjsonParser, createSseParser } from '../../bench/sse';
import { median, medianOfRecords, percentile, rotation } from '../../bench/stats';

// The pure parts of `npm run bench` (the bench itself is not part of npm test).
describe('bench harness', () => {
  describe('parseProcStat', () => {
    it('counts fields from the last parenthesis, so odd command names do not shift them', () => {
      const rest = 'S 1 2 3 4 5 6 7 8 9 10 1234 56 0 0 20 0 11 0 100 200 300';
      assert.deepEqual(parseProcStat(`4242 (node) ${rest}\n`), { utime: 1234, stime: 56 });
      assert.deepEqual(parseProcStat(`4242 (a) (b c) ${rest}`), { utime: 1234, stime: 56 });
    });

    it('rejects text that is not a stat line', () => {
      assert.throws(() => parseProcStat('garbage'), /not a \/proc/);
      assert.throws(() => parseProcStat('1 (x) S 1 2'), /utime\/stime missing/);
    });
  });

  describe('parseStatusKb', () => {
    it('reads a kB line in bytes', () => {
      const status = 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t   51200 kB\nThreads:\t11\n';
      assert.equal(parseStatusKb(status, 'VmRSS'), 51200 * 1024);
      assert.equal(parseStatusKb(status, 'VmHWM'), 204800 * 1024);
      assert.throws(() => parseStatusKb(status, 'VmSwap'), /VmSwap missing/);
    });
  });

  describe('parseProcIo', () => {
    it('reads the read and write system call counts', () => {
      const io = 'rchar: 6976\nwchar: 10\nsyscr: 12\nsyscw: 3\nread_bytes: 0\n';
      assert.deepEqual(parseProcIo(io), { reads: 12, writes: 3 });
      assert.throws(() => parseProcIo('rchar: 1\n'), /syscr missing/);
    });

    it("counts the main thread's writes apart from another thread's", async () => {
      const before = await Promise.all([
        readSyscalls(process.pid, { mainThread: true }),
        readSyscalls(process.pid),
      ]);
      const worker = new Worker(
        "const fs = require('node:fs'); const fd = fs.openSync('/dev/null', 'w');" +
          " for (let i = 0; i < 500; i += 1) fs.writeSync(fd, 'x'); fs.closeSync(fd);",
        { eval: true },
      );
      await once(worker, 'exit');
      const [main, all] = await Promise.all([
        readSyscalls(process.pid, { mainThread: true }),
        readSyscalls(process.pid),
      ]);
      // The worker's 500 writes are in the process's count and not in the main thread's (which
      // may write on its own meanwhile: mocha's reporter, other hooks).
      const mainWrites = main.writes - before[0].writes;
      const otherWrites = all.writes - before[1].writes - mainWrites;
      assert.ok(otherWrites >= 480, `other threads: ${otherWrites} writes, main: ${mainWrites}`);
    });
  });

  describe('parseListeningPorts', () => {
    const netTcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0',
      '   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0',
      '   2: 0100007F:1F92 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1',
    ].join('\n');

    it('keeps listening sockets owned by the process', () => {
      const inodes = socketInodes(['socket:[333]', 'pipe:[9]', 'socket:[111]', '/dev/null']);
      assert.deepEqual([...inodes].sort(), ['111', '333']);
      assert.deepEqual(parseListeningPorts(netTcp, inodes), [8080]);
    });

    it('finds a real server listening on port 0 through /proc', async () => {
      const server = http.createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const { port } = server.address() as AddressInfo;
        assert.ok((await listeningPorts(process.pid)).includes(port));
        assert.ok((await readCpuMicros(process.pid, 100)) > 0);
        const memory = await readMemory(process.pid);
        assert.ok(memory.rss > 0 && memory.peak >= memory.rss);
        assert.ok((await readSyscalls(process.pid)).reads > 0);
      } finally {
        server.close();
      }
    });
  });

  describe('statistics', () => {
    it('takes medians and nearest-rank percentiles', () => {
      assert.equal(median([3, 1, 2]), 2);
      assert.equal(median([4, 1, 3, 2]), 2.5);
      assert.ok(Number.isNaN(median([])));
      const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
      assert.equal(percentile(hundred, 50), 50);
      assert.equal(percentile(hundred, 99), 99);
      assert.equal(percentile([7], 99), 7);
    });

    it('collapses repetitions field by field', () => {
      const reps = [
        { rps: 10, cpu: 300 },
        { rps: 30, cpu: 100 },
        { rps: 20, cpu: 200 },
      ];
      assert.deepEqual(medianOfRecords(reps), { rps: 20, cpu: 200 });
    });

    it('rotates the order of the servers at each repetition', () => {
      assert.deepEqual(rotation(['a', 'b', 'c'], 0), ['a', 'b', 'c']);
      assert.deepEqual(rotation(['a', 'b', 'c'], 1), ['b', 'c', 'a']);
      assert.deepEqual(rotation(['a', 'b', 'c'], 5), ['c', 'a', 'b']);
    });
  });

  describe('stream parsers', () => {
    it('assembles SSE events split across reads, skipping comments', () => {
      const feed = createSseParser();
      assert.deepEqual(feed(': ping\n\nid: 1\nevent: message.del'), []);
      assert.deepEqual(feed('ta\ndata: {"text":"a"}\n\nevent: run.completed\r\ndata: {}\r\n\r\n'), [
        { event: 'message.delta', data: '{"text":"a"}' },
        { event: 'run.completed', data: '{}' },
      ]);
    });

    it('parses complete NDJSON lines only', () => {
      const feed = createNdjsonParser();
      assert.deepEqual(feed('{"a":1}\n{"b"'), [{ a: 1 }]);
      assert.deepEqual(feed(':2}\n'), [{ b: 2 }]);
    });
  });

  describe('checkBudget', () => {
    const load = {
      rps: 1,
      latency_p50_ms: 1,
      latency_p99_ms: 1,
      sim_cpu_us_per_req: 1,
      rss_mb: 1,
      reads_per_req: 2,
      writes_per_req: 3,
    };
    const summary = (cpu: number, deltas: number): Summary => ({
      load: {
        'run 16c': { ...load, cpu_us_per_req: cpu, errors: 0 },
        'proxy 16c': { ...load, cpu_us_per_req: 50, errors: 0 },
        'stream 16c': { ...load, cpu_us_per_req: cpu + 400, errors: 0, rss_mb: 180 },
        'proxy stream 16c': { ...load, cpu_us_per_req: 150, errors: 0, rss_mb: 500 },
        'run 64c': { ...load, cpu_us_per_req: 200, errors: 0 },
        'v1 16c': { ...load, cpu_us_per_req: 90, errors: 0 },
        'proxy v1 16c': { ...load, cpu_us_per_req: 50, errors: 0 },
        'v1 stream 16c': { ...load, cpu_us_per_req: 250, errors: 0 },
        'proxy v1 stream 16c': { ...load, cpu_us_per_req: 150, errors: 0 },
      },
      openai: {
        first_token_after_sim_p50_ms: 0.3,
        first_token_after_sim_p99_ms: 0.7,
        direct_first_token_after_sim_p50_ms: 0.1,
        first_token_added_p50_ms: 0.2,
        bad_streams: 0,
      },
      chunksPerReply: 50,
      latency: {
        direct_p50_ms: 1,
        direct_p99_ms: 2,
        gateway_p50_ms: 1.4,
        gateway_p99_ms: 3,
        added_p50_ms: 0.4,
        added_p99_ms: 1,
        direct_stream_p50_ms: 2,
        gateway_stream_p50_ms: 2.5,
        direct_ttft_p50_ms: 1,
        gateway_ttft_p50_ms: 1.2,
        added_ttft_p50_ms: 0.2,
        added_ttft_p99_ms: 0.5,
        first_token_after_sim_p50_ms: 0.25,
        first_token_after_sim_p99_ms: 0.6,
        direct_first_token_after_sim_p50_ms: 0.1,
        chunks_per_stream: 50,
        deltas_per_stream: deltas,
        bad_streams: 0,
      },
      paced: {
        streams: 10,
        deltas_per_stream: 50,
        batched_reads: 0,
        writes_per_stream: 53,
        writes_per_stream_max: 55,
      },
      openStreams: { streams: 500, open: 500, rss_idle_mb: 60, rss_open_mb: 120, failed: 0 },
    });

    it('passes figures within the budget and misses the worst connection count over it', () => {
      assert.ok(checkBudget(summary(240, 50)).every((line) => line.ok));
      const missed = checkBudget(summary(260, 49)).filter((line) => !line.ok);
      const ratio = summary(240, 50);
      ratio.load['proxy 16c']!.cpu_us_per_req = 40;
      const perChunk = summary(240, 50);
      perChunk.load['stream 16c']!.cpu_us_per_req = 240 + 501;
      const memory = summary(240, 50);
      memory.load['run 64c']!.rss_mb = 201;
      const v1Answered = summary(240, 50);
      v1Answered.load['v1 16c']!.cpu_us_per_req = 101;
      const v1Streamed = summary(240, 50);
      v1Streamed.load['v1 stream 16c']!.cpu_us_per_req = 301;
      const v1FirstToken = summary(240, 50);
      v1FirstToken.openai.first_token_added_p50_ms = 0.31;
      for (const [s, name] of [
        [v1Answered, '/v1/chat/completions answered: CPU against the bare proxy'],
        [v1Streamed, '/v1/chat/completions streamed: CPU against the bare proxy'],
        [v1FirstToken, '/v1 streamed: first token added over direct, p50'],
        [ratio, 'answered run: CPU against the bare proxy'],
        [perChunk, 'streamed run: CPU per chunk above an answered run'],
        [memory, 'RSS after the throughput runs'],
      ] as const) {
        assert.deepEqual(
          checkBudget(s)
            .filter((line) => !line.ok)
            .map((line) => line.name),
          [name],
        );
      }
      const batched = summary(240, 50);
      batched.paced.writes_per_stream = 12;
      assert.deepEqual(
        checkBudget(batched)
          .filter((line) => !line.ok)
          .map((line) => line.name),
        ['tokens never batched'],
      );
      assert.deepEqual(
        missed.map((line) => line.name),
        [
          'answered run: service CPU per request',
          'answered run: CPU against the bare proxy',
          'tokens never batched',
        ],
      );
    });

    it('checks what the Redis store adds to an answered run when it was measured', () => {
      const name = 'answered run: CPU the Redis store adds (REDIS_URL)';
      const line = (s: Summary) => checkBudget(s).find((l) => l.name === name);
      assert.equal(line(summary(240, 50)), undefined, 'no line without the scenario');
      const within = summary(240, 50);
      within.load['twin run 16c'] = { ...load, cpu_us_per_req: 300, errors: 0 };
      within.load['redis run 16c'] = { ...load, cpu_us_per_req: 420, errors: 0 };
      within.redisAddedUs = [130, -20, 100];
      assert.deepEqual(
        { ok: line(within)?.ok, measured: line(within)?.measured },
        {
          ok: true,
          measured:
            '100 µs (median of +130, -20, +100 against its twin without Redis; medians 420 − 300 µs)',
        },
      );
      within.redisAddedUs = [130, -20, 101];
      assert.equal(line(within)?.ok, false);
    });

    it('shows the bare proxy beside the latency rows when it was measured', () => {
      const line = (s: Summary, name: string) =>
        checkBudget(s).find((l) => l.name === name)?.measured ?? '';
      const without = summary(240, 50);
      assert.doesNotMatch(line(without, 'added latency, one connection, p50'), /bare proxy/);
      const withProxy = summary(240, 50);
      withProxy.latency.proxy_added_p50_ms = 0.21;
      withProxy.latency.proxy_first_token_after_sim_p50_ms = 0.33;
      assert.match(
        line(withProxy, 'added latency, one connection, p50'),
        /; bare proxy 0\.210 ms\)$/,
      );
      assert.match(
        line(withProxy, 'first token after the simulator sent it, p50'),
        /; bare proxy 0\.330 ms\)$/,
      );
    });
  });

  describe('sumGcLines', () => {
    // Two scavenges and a mark-compact as Node 24 prints them (fields abridged and reordered so
    // that nodes_promoted comes first), output of the service between them, and one line cut
    // before its end.
    const scavenge = (pause: number, promoted: number) =>
      `[11377:0x20631000:0]     5266 ms: pause=${pause} mutator=66.3 gc=s time_to_safepoint=0.00 ` +
      `scavenge=4.51 nodes_promoted=0 scavenge.parallel=0.00 allocated=12325064 ` +
      `promoted=${promoted} new_space_survived=1573464 promotion_ratio=11.3% promotion_rate=90.0%`;
    const text = [
      scavenge(4.6, 1_000_000),
      '{"level":"warn","message":"something else"}',
      scavenge(3.4, 500_000),
      '[11377:0x20631000:0]     6001 ms: pause=20.5 mutator=1.0 gc=mc allocated=1024 promoted=2048',
      '[11377:0x20631000:0]     6100 ms: pause=1.0 mutator=1',
    ].join('\n');

    it('sums each kind of collection, reading promoted= and not its longer cousins', () => {
      const sums = sumGcLines(text);
      assert.deepEqual(sums.get('s'), {
        count: 2,
        pauseMs: 8,
        promoted: 1_500_000,
        allocated: 24_650_128,
      });
      assert.deepEqual(sums.get('mc'), {
        count: 1,
        pauseMs: 20.5,
        promoted: 2048,
        allocated: 1024,
      });
      assert.equal(sums.size, 2);
    });

    it('reports per request', () => {
      const report = gcReport(sumGcLines(text), 1000);
      assert.match(report, /scavenge\s+2\s+8\.0 µs\s+1\.5 KB\s+24\.1 KB/);
      assert.match(report, /mark-compact\s+1\s+20\.5 µs/);
    });
  });

  describe('parseMemory', () => {
    it('reads memory sizes as Kubernetes writes them', () => {
      assert.equal(parseMemory('512Mi'), 512 * 2 ** 20);
      assert.equal(parseMemory('1Gi'), 2 ** 30);
      assert.equal(parseMemory('300M'), 300e6);
      assert.equal(parseMemory('4096'), 4096);
      assert.throws(() => parseMemory('512MB'), /like 512Mi/);
      assert.throws(() => parseMemory('lots'), /like 512Mi/);
    });
  });

  describe('bench:floor', () => {
    it('reads a level as the concerns it runs', () => {
      assert.deepEqual([...parseLevel('express')], []);
      assert.deepEqual([...parseLevel('stack')], [...CONCERNS]);
      assert.deepEqual([...parseLevel('helmet,validate')], ['helmet', 'validate']);
      assert.throws(() => parseLevel('helmet,teleport'), /unknown concern: teleport/);
    });
  });
});
