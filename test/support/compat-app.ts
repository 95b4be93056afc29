import { buildTestApp, type RunningApp, type TestApp } from './build-app';
import { TEST_API_KEYS } from './security';

/** Keys on, and a drop-in budget no test reaches unless it means to. */
export const COMPAT_ENV = { API_KEYS: TEST_API_KEYS, RATE_LIMIT_COMPAT_PER_MINUTE: '1000' };

/**
 * For the drop-in endpoints' client suites: a whole app on a real socket per test (its own
 * simulator), with the installed models known to the metrics; closed after each test.
 */
export function useListeningApp(): { readonly t: TestApp; readonly running: RunningApp } {
  let t: TestApp | undefined;
  let running: RunningApp | undefined;
  beforeEach(async () => {
    t = await buildTestApp({ env: COMPAT_ENV });
    running = await t.listen();
    await t.ollamaHealth.refresh(); // installed models become metric labels
  });
  afterEach(() => t?.close());
  return {
    get t() {
      if (!t) throw new Error('the app is built in beforeEach');
      return t;
    },
    get running() {
      if (!running) throw new Error('the app is built in beforeEach');
      return running;
    },
  };
}
