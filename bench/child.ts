/** Child processes for the benchmarks that run the daemon or the Hat peer apart (lone-writer). */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Child {
  child: ChildProcess;
  /** Writes one line to the child's stdin (when it was given one). */
  send(line: string): void;
  /** The first line of the child's stdout matching `pred` (seen already, or to come); rejects
   * if the child exits first. */
  line(pred: (l: string) => boolean): Promise<string>;
  /** The child's exit code, once it exited. */
  exited: Promise<number | null>;
  /** Ends the child (closes its stdin when it was given one, else SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

/**
 * The daemon's entry point the benchmarks run: this build's, or another build's
 * `dist/src/cli/main.js` named by `AIMM_BENCH_DAEMON` (a "before" build measured with the same
 * driver, alternately with this one: docs/performance.md).
 */
export const DAEMON_MAIN =
  process.env.AIMM_BENCH_DAEMON ??
  join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

/**
 * glibc's malloc asking the kernel for transparent huge pages (glibc 2.35+, ignored by older
 * ones): on a VM where a page fault is expensive, a fresh 10 MiB buffer costs several times less.
 * See docs/operations.md (memory allocator).
 */
export const HUGE_PAGES_ENV = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' } as const;

/**
 * glibc's malloc with a fixed mmap threshold of 128 KiB: large buffers are always mapped apart and
 * unmapped when freed. By default the threshold grows (up to 32 MiB) once a large buffer has been
 * freed, after which 10 MiB buffers come from the heap and stay resident once freed.
 */
export const MMAP_THRESHOLD_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const;

/** Runs `node argv…`, its stdout read line by line, its stderr inherited; `env` is added to the
 * bench's own environment. */
export function startNode(
  argv: string[],
  stdin: 'pipe' | 'ignore' = 'ignore',
  env: Record<string, string> = {},
): Child {
  const child = spawn(process.execPath, argv, {
    stdio: [stdin, 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  let partial = '';
  const seen: string[] = [];
  let waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  child.stdout?.on('data', (b: Buffer) => {
    partial += b.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      seen.push(l);
      const matched = waiters.filter((w) => w.pred(l));
      waiters = waiters.filter((w) => !matched.includes(w));
      for (const w of matched) w.resolve(l);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return {
    child,
    send: (l) => child.stdin?.write(`${l}\n`),
    exited,
    line: (pred) => {
      const l = seen.find(pred);
      if (l !== undefined) return Promise.resolve(l);
      return Promise.race([
        new Promise<string>((resolve) => waiters.push({ pred, resolve })),
        exited.then((c) => {
          throw new Error(`child exited (${c}) before answering`);
        }),
      ]);
    },
    stop: async () => {
      if (stdin === 'pipe') child.stdin?.end();
      else child.kill('SIGTERM');
      await exited;
    },
  };
}

/** User and system CPU time of a process, in ms (Linux /proc; zeros elsewhere). */
export function cpuOf(pid: number | undefined): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // USER_HZ is 100 on Linux: one tick is 10 ms.
    return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** A memory figure of a process from /proc/PID/status, in MiB (NaN when absent). */
export function procStatusMiB(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync(`/proc/${pid}/status`, 'utf8'),
  );
  return Number(m?.[1] ?? Number.NaN) / 1024;
}

/** Resets a process's peak RSS (VmHWM) to its current RSS; false where Linux refuses. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The port a daemon's control listens on, from its `listening` log line (port-0 configs). */
export async function listeningPort(proc: Child, control: string): Promise<number> {
  const line = await proc.line(
    (l) => l.includes('"listening"') && l.includes(`"control":"${control}"`),
  );
  return (JSON.parse(line) as { port: number }).port;
}

/**
 * Writes `<dir>/<name>.json`: a daemon config on the event backend (prefix `bench.<name>`, a
 * snapshot `<dir>/<name>.snapshot.db` when asked) for the Hat peer on `peerPort`, with the Juggler
 * and HTTP controls on port 0. Returns the file's path.
 */
export function writeEventDaemonConf(
  dir: string,
  name: string,
  peerPort: number,
  snapshot: boolean,
): string {
  const conf = join(dir, `${name}.json`);
  writeFileSync(
    conf,
    JSON.stringify({
      name,
      backend: {
        module: 'aimm-store/backends/event',
        model_prefix: ['bench', name],
        ...(snapshot ? { snapshot: { path: join(dir, `${name}.snapshot.db`) } } : {}),
      },
      hat: { eventer_server: { host: '127.0.0.1', port: peerPort } },
      control: [
        { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
        { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
      ],
      log: { level: 'info' },
    }),
  );
  return conf;
}
