import { createMemoryRunRepository } from '../../services/agents/run-repository';
import { runRepositoryContract } from '../support/run-repository-contract';

runRepositoryContract('in memory', async ({ max, ttlMs }) => {
  let now = 1_000;
  return {
    runs: createMemoryRunRepository({ max, ttlMs, now: () => now }),
    advance: (ms) => void (now += ms),
  };
});
