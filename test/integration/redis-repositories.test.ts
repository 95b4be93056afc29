import { createRedisIdempotencyRepository } from '../../services/agents/idempotency-redis';
import { createRedisRunRepository } from '../../services/agents/run-repository-redis';
import { createLogger } from '../../src/logger';
import { idempotencyContract } from '../support/idempotency-contract';
import { createManualClock } from '../support/manual-clock';
import { useRedis } from '../support/redis-fixture';
import { runRepositoryContract } from '../support/run-repository-contract';

describe('the Redis repositories (real redis-server)', function () {
  this.timeout(20_000);
  const redis = useRedis();

  runRepositoryContract('Redis', async ({ max, ttlMs }) => {
    const clock = createManualClock();
    const runs = createRedisRunRepository({
      redis: await redis.connect(),
      max,
      ttlMs,
      leaseMs: 5000,
      clock,
      logger: createLogger({ level: 'silent', format: 'json' }),
    });
    return { runs, advance: (ms) => clock.advance(ms) };
  });

  idempotencyContract('Redis', async ({ ttlMs }) => {
    let now = 1_000;
    const keys = createRedisIdempotencyRepository({
      redis: await redis.connect(),
      ttlMs,
      now: () => now,
    });
    return { keys, advance: (ms) => void (now += ms) };
  });
});
