import type { RootHookObject } from 'mocha';
import { serverChildren } from './server-process';

/**
 * Mocha root hooks (loaded through `require` in .mocharc.json). A server child that never
 * logged `listening` belongs to a test that gave up on it: it is killed when that test ends.
 * Whatever child is still running when the whole run ends is killed too, so its open pipes
 * cannot keep mocha from exiting after the count line.
 */
export const mochaHooks: RootHookObject = {
  afterEach() {
    for (const child of serverChildren.starting) child.kill('SIGKILL');
  },
  afterAll() {
    for (const child of serverChildren.alive) child.kill('SIGKILL');
  },
};
