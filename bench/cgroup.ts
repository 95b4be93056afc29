/**
 * A memory cgroup for one benchmarked process, so the service runs under the memory limit a
 * container would give it. Node sizes V8's heap from that limit (`process.constrainedMemory()`)
 * and from the whole host without one, so RSS figures taken without a limit describe a process
 * no pod runs. Needs a writable cgroup tree (root, cgroup v1 or v2); says so plainly otherwise.
 */
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = '/sys/fs/cgroup';

export interface MemoryCgroup {
  /** The file a process writes its pid to, to join. */
  procs: string;
  /** Removes the cgroup once its process has exited (an empty cgroup). */
  remove(): void;
}

/** `512Mi`, `1Gi`, `300M` (decimal) or plain bytes, as Kubernetes writes memory. */
export function parseMemory(text: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(text.trim());
  if (!match) throw new Error(`a memory size like 512Mi, got "${text}"`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 };
  return Number(match[1]) * (match[2] ? unit[match[2] as keyof typeof unit] : 1);
}

let created = 0;

/** Creates a cgroup limited to `bytes` of memory (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`). */
export function createMemoryCgroup(bytes: number): MemoryCgroup {
  const name = `oag-bench-${process.pid}-${(created += 1)}`;
  const v2 = existsSync(path.join(ROOT, 'cgroup.controllers'));
  const dir = v2 ? path.join(ROOT, name) : path.join(ROOT, 'memory', name);
  try {
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'),
      String(Math.floor(bytes)),
    );
  } catch (err) {
    if (existsSync(dir)) rmdirSync(dir);
    throw new Error(
      `--memory-limit needs a writable memory cgroup (root, cgroup v1 or v2 with the memory controller): ${(err as Error).message}`,
    );
  }
  return {
    procs: path.join(dir, 'cgroup.procs'),
    remove: () => rmdirSync(dir),
  };
}
