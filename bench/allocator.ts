/**
 * `node dist/bench/allocator.js [--rounds N] [--quick]`: is glibc's `glibc.malloc.hugetlb=1`
 * tunable (malloc asking for transparent huge pages) worth shipping in the systemd unit?
 *
 * Two daemons of the same build (sqlite backend, HTTP control), one started plainly (the
 * baseline), one with {@link HUGE_PAGES_ENV}, run in turn (order rotated by round). Each: idle RSS
 * once ready, 1 KiB PUTs from 16 connections, then 10 MiB and 64 MiB PUTs one after another with
 * the peak RSS over idle. Printed: each figure per round and the huge/plain ratio of the medians.
 *
 * Also printed, for the plain daemon: the peak of one 10 MiB and one 64 MiB upload right after a
 * forced full GC (the daemon is started with `--expose-gc` and a preload, bench/gc-on-signal.ts,
 * that collects on SIGUSR2) — the copies an upload really holds, apart from the garbage of earlier
 * uploads that V8 has not collected yet (it frees a dropped Buffer's memory only at its next GC,
 * paced by how much external memory has grown: tens of MiB).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  type Child,
  DAEMON_MAIN,
  HUGE_PAGES_ENV,
  listeningPort,
  procStatusMiB,
  resetPeak,
  startNode,
} from './child.js';
import { httpPut } from './http-put.js';
import { median } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MAIN = DAEMON_MAIN;
const GC_HOOK = join(HERE, 'gc-on-signal.js');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const roundsArg = args.indexOf('--rounds');
const ROUNDS = roundsArg >= 0 ? Number(args[roundsArg + 1]) : quick ? 1 : 3;
const SMALL_WRITES = quick ? 500 : 2000;
const BIG_WRITES = quick ? 3 : 10;
const MiB = 1 << 20;

interface Daemon {
  proc: Child;
  pid: number;
  port: number;
  dir: string;
}

async function startDaemon(env: Record<string, string>, gcHook: boolean): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'aimm-alloc-'));
  const conf = join(dir, 'conf.json');
  writeFileSync(
    conf,
    JSON.stringify({
      name: 'alloc',
      backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'models.db') },
      control: [{ module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } }],
      log: { level: 'info' },
    }),
  );
  const pre = gcHook ? ['--expose-gc', '--import', GC_HOOK] : [];
  const proc = startNode([...pre, MAIN, 'serve', '--conf', conf], 'ignore', env);
  const port = await listeningPort(proc, 'http');
  await proc.line((l) => l.includes('"msg":"ready"'));
  return { proc, pid: proc.child.pid as number, port, dir };
}

async function stopDaemon(d: Daemon): Promise<void> {
  await d.proc.stop();
  rmSync(d.dir, { recursive: true, force: true });
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

function put(port: number, id: number, body: Buffer): Promise<void> {
  return httpPut(agent, port, `/models/${id}?type=bench`, body);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figures {
  idleMiB: number;
  smallPerS: number;
  /** Uploads per second of each large size, one after another. */
  bigPerS: Record<number, number>;
  /** Peak RSS during those uploads over idle, in models. */
  bigPeakModels: Record<number, number>;
}

const BIG_SIZES_MIB = [10, 64];

async function measure(env: Record<string, string>): Promise<Figures> {
  const d = await startDaemon(env, false);
  try {
    await sleep(300);
    const idleMiB = procStatusMiB(d.pid, 'VmRSS');
    const small = Buffer.alloc(1024, 7);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < SMALL_WRITES) await put(d.port, ++next, small);
      }),
    );
    const smallPerS = SMALL_WRITES / ((performance.now() - t0) / 1000);
    const bigPerS: Record<number, number> = {};
    const bigPeakModels: Record<number, number> = {};
    let id = 1_000_000;
    for (const mib of BIG_SIZES_MIB) {
      resetPeak(d.pid);
      const big = Buffer.alloc(mib * MiB, 3);
      const count = mib >= 64 ? Math.max(2, BIG_WRITES / 3) : BIG_WRITES;
      const t = performance.now();
      for (let i = 0; i < count; i++) await put(d.port, id++, big);
      bigPerS[mib] = count / ((performance.now() - t) / 1000);
      bigPeakModels[mib] = (procStatusMiB(d.pid, 'VmHWM') - idleMiB) / mib;
    }
    return { idleMiB, smallPerS, bigPerS, bigPeakModels };
  } finally {
    await stopDaemon(d);
  }
}

/** Peak over idle of uploads of `mib` each right after a forced GC, in models. */
async function peakAfterGc(mib: number, uploads: number): Promise<number[]> {
  const d = await startDaemon({}, true);
  try {
    await sleep(300);
    const idle = procStatusMiB(d.pid, 'VmRSS');
    const body = Buffer.alloc(mib * MiB, 5);
    const out: number[] = [];
    for (let i = 0; i < uploads; i++) {
      d.proc.child.kill('SIGUSR2');
      await sleep(300);
      resetPeak(d.pid);
      await put(d.port, i + 1, body);
      out.push((procStatusMiB(d.pid, 'VmHWM') - idle) / mib);
    }
    return out;
  } finally {
    await stopDaemon(d);
  }
}

const modes = { plain: {}, huge: { ...HUGE_PAGES_ENV } } as const;
const results: Record<keyof typeof modes, Figures[]> = { plain: [], huge: [] };
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
for (let round = 0; round < ROUNDS; round++) {
  const order: (keyof typeof modes)[] = round % 2 === 0 ? ['plain', 'huge'] : ['huge', 'plain'];
  for (const m of order) {
    const f = await measure(modes[m]);
    results[m].push(f);
    const big = BIG_SIZES_MIB.map(
      (mib) =>
        `${mib} MiB PUT ${fmt(f.bigPerS[mib] ?? 0)}/s (peak over idle ${fmt(f.bigPeakModels[mib] ?? 0)} models)`,
    );
    console.log(
      `round ${round + 1} ${m.padEnd(5)} idle ${fmt(f.idleMiB)} MiB, 1 KiB PUT ${fmt(f.smallPerS)}/s, ${big.join(', ')}`,
    );
  }
}
const figures: [string, (f: Figures) => number][] = [
  ['idle RSS MiB', (f) => f.idleMiB],
  ['1 KiB PUT/s', (f) => f.smallPerS],
  ...BIG_SIZES_MIB.flatMap((mib): [string, (f: Figures) => number][] => [
    [`${mib} MiB PUT/s`, (f) => f.bigPerS[mib] ?? 0],
    [`${mib} MiB peak (models)`, (f) => f.bigPeakModels[mib] ?? 0],
  ]),
];
console.log('\nhuge pages / plain (medians):');
for (const [name, get] of figures) {
  const p = median(results.plain.map(get));
  const h = median(results.huge.map(get));
  console.log(`  ${name.padEnd(22)} ${fmt(p)} → ${fmt(h)}  (${(h / p).toFixed(2)}×)`);
}
for (const mib of BIG_SIZES_MIB) {
  const peaks = await peakAfterGc(mib, quick ? 2 : 4);
  console.log(
    `plain daemon, one ${mib} MiB upload after a full GC: peak over idle ${peaks.map(fmt).join(' / ')} models`,
  );
}
process.exit(0);
