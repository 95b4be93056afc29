import assert from 'node:assert/strict';
import type { IdempotencyRepository } from '../../services/agents/idempotency';
import { createAgentRegistry } from '../../services/agents/registry';
import { createMemoryRunRepository } from '../../services/agents/run-repository';
import type { AgentRunner } from '../../services/agents/runner';
import { createAgentsService } from '../../services/agents/service';
import type { DeliveryResult } from '../../services/agents/webhooks';
import { createSsrfGuard } from '../../services/net/ssrf-guard';
import type { ToolRegistry } from '../../services/tools';
import { createLogger } from '../../src/logger';
import { createRequestContextStore } from '../../src/request-context';
import { createSchemaRegistry } from '../../src/validation';
import { createManualClock } from '../support/manual-clock';
import { until } from '../support/ollama-simulator/settle';
import { queuedRun } from '../support/run-handles';

describe('agents service takeover rounds', () => {
  describe('when a taken-over run’s webhook receiver is slow', () => {
    it('ends the run at once, holds it until the delivery is recorded, and runs the next rounds meanwhile', async () => {
      const clock = createManualClock({ now: Date.now });
      const memory = createMemoryRunRepository({ max: 10, ttlMs: 60_000, now: Date.now });
      const run = queuedRun('run_orphan');
      run.webhook = {
        url: 'https://hooks.example/h',
        events: ['run.failed'],
        last_delivery_status: 'pending',
        last_status_code: null,
        attempts: 0,
      };
      await memory.create(run, 'anonymous');
      // The repository hands the run over once, as Redis does when its replica's lease lapsed.
      const orphans = [['run_orphan']];
      // Rounds that got as far as due pauses, their last step (a round that is skipped while
      // the one before it is still under way never gets there).
      let rounds = 0;
      let released = 0;
      const runs = {
        ...memory,
        claimOrphans: () => Promise.resolve(orphans.shift() ?? []),
        duePauses: (now: number) => {
          rounds += 1;
          return memory.duePauses(now);
        },
        release: (id: string) => {
          released += 1;
          return memory.release(id);
        },
      };
      let answer = (_result: DeliveryResult): void => undefined;
      const delivered: string[] = [];
      const service = createAgentsService({
        agents: createAgentRegistry({ agents: [] }),
        tools: {} as ToolRegistry,
        schemas: createSchemaRegistry(),
        runner: {} as AgentRunner,
        runs,
        idempotency: {} as IdempotencyRepository,
        webhooks: {
          deliver: (_url, type) => {
            delivered.push(type);
            return new Promise((resolve) => (answer = resolve));
          },
        },
        webhookGuard: createSsrfGuard({ allowHosts: null }),
        models: { active: () => 'llama3.2:3b' },
        numCtx: { for: () => 4096, defaultModel: () => 'llama3.2:3b' },
        logger: createLogger({
          level: 'silent',
          format: 'json',
          context: createRequestContextStore(),
        }),
        now: Date.now,
        clock,
        telemetry: { runCoordination: () => undefined, agentRun: () => undefined },
        takeoverEveryMs: 1000,
        maxActionTtlMs: 600_000,
        maxSamples: 5,
        mcpServers: [],
      });
      service.startWork();
      try {
        clock.advance(1000);
        await until(() => delivered.length === 1 && rounds === 1);
        assert.equal((await memory.get('run_orphan'))?.run.status, 'failed');
        const handle = await service.find('run_orphan', undefined);

        // The receiver has not answered: later rounds still run, the run is still held.
        clock.advance(1000);
        await until(() => rounds === 2);
        clock.advance(1000);
        await until(() => rounds === 3);
        assert.equal(released, 0);

        answer({ status: 'delivered', attempts: 1, statusCode: 200 });
        await handle.settled();
        assert.equal(released, 1);
        assert.equal(
          (await memory.get('run_orphan'))?.run.webhook?.last_delivery_status,
          'delivered',
        );
      } finally {
        answer({ status: 'failed', attempts: 1, statusCode: 503 });
        await service.stopWork();
      }
    });
  });
});
