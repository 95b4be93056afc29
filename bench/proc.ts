/**
 * Reads what the kernel knows about a process: CPU time (/proc/<pid>/stat), resident memory
 * (/proc/<pid>/status) and listening TCP ports (/proc/<pid>/fd + /proc/<pid>/net/tcp).
 * Linux only; the parsers are pure so they can be tested on fixed text.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';

/** CPU time of a process in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
export interface CpuTicks {
  utime: number;
  stime: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself contain
 * spaces and ')', so fields are counted from the LAST ')'.
 */
export function parseProcStat(text: string): CpuTicks {
  const end = text.lastIndexOf(')');
  if (end === -1) throw new Error('not a /proc/<pid>/stat line');
  // After ')': field 3 (state) is at index 0, so field n is at index n - 3.
  const rest = text
    .slice(end + 2)
    .trim()
    .split(/\s+/);
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) {
    throw new Error('utime/stime missing from /proc/<pid>/stat');
  }
  return { utime, stime };
}

/** A `kB` line of /proc/<pid>/status (VmRSS, VmHWM…) in bytes. */
export function parseStatusKb(text: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+)\\s+kB$`, 'm').exec(text);
  if (!match?.[1]) throw new Error(`${key} missing from /proc/<pid>/status`);
  return Number(match[1]) * 1024;
}

/** Read and write system calls so far, from /proc/<pid>/io (syscr, syscw). */
export function parseProcIo(text: string): { reads: number; writes: number } {
  const field = (key: string): number => {
    const match = new RegExp(`^${key}:\\s+(\\d+)$`, 'm').exec(text);
    if (!match?.[1]) throw new Error(`${key} missing from /proc/<pid>/io`);
    return Number(match[1]);
  };
  return { reads: field('syscr'), writes: field('syscw') };
}

/** Socket inodes from the targets of /proc/<pid>/fd/* links (`socket:[12345]`). */
export function socketInodes(linkTargets: string[]): Set<string> {
  const inodes = new Set<string>();
  for (const target of linkTargets) {
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1]) inodes.add(match[1]);
  }
  return inodes;
}

/** Ports in LISTEN state (st 0A) whose inode is one of `inodes`, from /proc/net/tcp text. */
export function parseListeningPorts(netTcp: string, inodes: Set<string>): number[] {
  const ports: number[] = [];
  for (const line of netTcp.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1];
    if (!local || cols[3] !== '0A' || !inodes.has(cols[9] ?? '')) continue;
    ports.push(parseInt(local.slice(local.indexOf(':') + 1), 16));
  }
  return ports.sort((a, b) => a - b);
}

/** Clock ticks per second (`getconf CLK_TCK`, 100 on nearly every Linux). */
export function clockTicksPerSecond(): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
}

/** Total CPU time (user + system) the process has used, in microseconds. */
export async function readCpuMicros(pid: number, ticksPerSecond: number): Promise<number> {
  const { utime, stime } = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  return ((utime + stime) * 1e6) / ticksPerSecond;
}

/** Resident set size now (VmRSS) and its peak so far (VmHWM), in bytes. */
export async function readMemory(pid: number): Promise<{ rss: number; peak: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return { rss: parseStatusKb(text, 'VmRSS'), peak: parseStatusKb(text, 'VmHWM') };
}

/**
 * Read/write system calls the process has made (sockets included), all its threads; with
 * `mainThread`, those of its main thread alone (/proc/<pid>/task/<pid>/io): Node's event loop,
 * which writes to the sockets, without the wake-ups that V8's and libuv's worker threads write
 * to the loop's eventfd.
 */
export async function readSyscalls(
  pid: number,
  options: { mainThread?: boolean } = {},
): Promise<{ reads: number; writes: number }> {
  const path = options.mainThread ? `/proc/${pid}/task/${pid}/io` : `/proc/${pid}/io`;
  return parseProcIo(await readFile(path, 'utf8'));
}

/** TCP ports the process listens on (IPv4), lowest first; empty before it listens. */
export async function listeningPorts(pid: number): Promise<number[]> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const targets = await Promise.all(
    fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')),
  );
  const inodes = socketInodes(targets);
  if (inodes.size === 0) return [];
  return parseListeningPorts(await readFile(`/proc/${pid}/net/tcp`, 'utf8'), inodes);
}
