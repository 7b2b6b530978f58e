import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { modelRegisterEvent } from '../src/backends/event/format.js';
import { JugglerClient } from '../src/client/index.js';
import { connect } from '../src/hat/eventer/client.js';
import type { EventerClient } from '../src/hat/eventer/common.js';
import {
  type Child,
  cpuOf,
  DAEMON_MAIN,
  HUGE_PAGES_ENV,
  listeningPort,
  MMAP_THRESHOLD_ENV,
  procStatusMiB,
  resetPeak,
  startNode,
  writeEventDaemonConf,
} from './child.js';
import { httpPut } from './http-put.js';
import { median } from './stats.js';

const _HERE = dirname(fileURLToPath(import.meta.url));
const MAIN = DAEMON_MAIN;
const MiB = 1024 * 1024;

const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log(`usage: node dist/bench/large-models.js [--quick] [--rounds N] [--huge-pages] [--mmap-threshold] [--profile DIR]
  --quick        2 rounds, fewer writes per size
  --rounds N     interleaved rounds (default 4)
  --huge-pages   also a daemon started with ${Object.entries(HUGE_PAGES_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}
  --mmap-threshold  also a daemon started with ${Object.entries(MMAP_THRESHOLD_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}
  --profile DIR  the daemons write CPU profiles into DIR`);
  process.exit(0);
}
const quick = args.includes('--quick');
const roundsAt = args.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : quick ? 2 : 4;
if (!(Number.isInteger(ROUNDS) && ROUNDS > 0)) throw new Error('--rounds takes a positive integer');
const profileAt = args.indexOf('--profile');
const profileDir = profileAt >= 0 ? (args[profileAt + 1] ?? null) : null;
const hugePages = args.includes('--huge-pages');
const mmapThreshold = args.includes('--mmap-threshold');

const SIZES = [
  { label: '4 KiB', bytes: 4 * 1024, count: quick ? 20 : 50 },
  { label: '1 MiB', bytes: MiB, count: quick ? 4 : 10 },
  { label: '10 MiB', bytes: 10 * MiB, count: quick ? 2 : 3 },
];

/** User + system CPU time of a process, in ms (Linux /proc; 0 elsewhere). */
function cpuMs(pid: number): number {
  const { user, system } = cpuOf(pid);
  return user + system;
}

// ---- the daemons -------------------------------------------------------------------------------

interface Daemon {
  /** RSS after start and warm-up, MiB (set by main before the rounds). */
  idleMiB?: number;
  proc: Child;
  pid: number;
  juggler: string;
  http: number;
}

async function startDaemon(
  dir: string,
  name: string,
  port: number,
  snapshot: boolean,
  env: Record<string, string> = {},
) {
  const conf = writeEventDaemonConf(dir, name, port, snapshot);
  const prof = profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  const proc = startNode([...prof, MAIN, 'serve', '--conf', conf], 'ignore', env);
  const d: Daemon = {
    proc,
    pid: proc.child.pid as number,
    juggler: `ws://127.0.0.1:${await listeningPort(proc, 'juggler')}/`,
    http: await listeningPort(proc, 'http'),
  };
  await proc.line((l) => l.includes('"msg":"ready"'));
  return d;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

// ---- the contenders ----------------------------------------------------------------------------

interface Contender {
  name: string;
  daemon: Daemon | null;
  /** Writes `count` updates of the model, each awaited. */
  run(body: Buffer, count: number): Promise<void>;
}

const MODEL_ID = 1;

function directContender(
  port: number,
): Contender & { open(): Promise<void>; close(): Promise<void> } {
  const prefix = ['bench', 'direct'];
  let client: EventerClient | null = null;
  let sub: { unsubscribe(): void } | null = null;
  return {
    name: 'direct eventer',
    daemon: null,
    async open() {
      client = await connect(
        { host: '127.0.0.1', port },
        { clientName: 'bench/direct', subscriptions: [[...prefix, '*']] },
      );
      sub = client.events$.subscribe(() => {});
    },
    async close() {
      sub?.unsubscribe();
      await client?.close();
    },
    async run(body, count) {
      const c = client as EventerClient;
      for (let i = 0; i < count; i++) {
        // The event built from the bytes each time, as any writer of AIMM's format must.
        const res = await c.register([modelRegisterEvent(prefix, MODEL_ID, 'bench.Model', body)]);
        if (res === null) throw new Error('register refused');
      }
    },
  };
}

function jugglerContender(name: string, daemon: Daemon): Contender {
  return {
    name,
    daemon,
    async run(body, count) {
      const client = await JugglerClient.connect(daemon.juggler);
      try {
        for (let i = 0; i < count; i++) {
          await client.put('bench.Model', body, { instanceId: MODEL_ID });
        }
      } finally {
        await client.close();
      }
    },
  };
}

function httpContender(name: string, daemon: Daemon): Contender {
  return {
    name,
    daemon,
    async run(body, count) {
      for (let i = 0; i < count; i++) {
        await httpPut(agent, daemon.http, `/models/${MODEL_ID + 1}?type=bench.Model`, body);
      }
    },
  };
}

interface Sample {
  perSec: number;
  /** The daemon's RSS just before the writes, MiB (NaN for the direct client). */
  beforeMiB: number;
  /** The daemon's peak RSS during the writes, MiB (NaN for the direct client). */
  peakMiB: number;
  cpuMsPerWrite: number;
}

async function measure(c: Contender, body: Buffer, count: number): Promise<Sample> {
  const pid = c.daemon?.pid;
  await new Promise((r) => setTimeout(r, 150));
  const before = pid === undefined ? Number.NaN : procStatusMiB(pid, 'VmRSS');
  const reset = pid !== undefined && resetPeak(pid);
  const cpu0 = pid === undefined ? 0 : cpuMs(pid);
  const t0 = performance.now();
  await c.run(body, count);
  const ms = performance.now() - t0;
  const cpu = pid === undefined ? Number.NaN : cpuMs(pid) - cpu0;
  const peak = reset && pid !== undefined ? procStatusMiB(pid, 'VmHWM') : Number.NaN;
  return {
    perSec: (count / ms) * 1000,
    beforeMiB: before,
    peakMiB: peak,
    cpuMsPerWrite: cpu / count,
  };
}

/**
 * One result line: throughput, ratio to the direct client, and (daemons only) CPU per write, the
 * daemon's idle RSS (after start and warm-up), its peak above that idle RSS (median, max over the
 * rounds, the max in multiples of the model: the goal is at most 3×) and its peak above its RSS
 * just before the writes (median: what the writes added to what the daemon already held).
 */
function row(xs: Sample[], base: Sample[], modelBytes: number, idleMiB: number): string {
  const perSec = median(xs.map((x) => x.perSec)).toFixed(1);
  const ratio = range(xs.map((x, i) => x.perSec / (base[i] as Sample).perSec));
  const head = `${perSec.padStart(9)}  ${ratio.padEnd(19)}`;
  if (Number.isNaN(idleMiB)) return head;
  const cpu = `${median(xs.map((x) => x.cpuMsPerWrite)).toFixed(0)} ms`;
  const overIdle = xs.map((x) => x.peakMiB - idleMiB);
  const max = Math.max(...overIdle);
  const times = (max * MiB) / modelBytes;
  const overBefore = median(xs.map((x) => x.peakMiB - x.beforeMiB));
  const mem = `${median(overIdle).toFixed(0)}, ${max.toFixed(0)} (${times.toFixed(times < 10 ? 1 : 0)}×)`;
  return `${head}${cpu.padStart(8)}${idleMiB.toFixed(0).padStart(6)}   ${mem.padEnd(34)}${overBefore.toFixed(1)}`;
}

function range(xs: number[]): string {
  const f = (x: number) => x.toFixed(2);
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aimm-large-models-'));
  const peer = startNode([fileURLToPath(import.meta.url), '--peer'], 'pipe');
  const daemons: Daemon[] = [];
  const direct = { close: async () => {} } as ReturnType<typeof directContender>;
  let opened: ReturnType<typeof directContender> | null = null;
  try {
    const port = (JSON.parse(await peer.line((l) => l.startsWith('{'))) as { port: number }).port;
    const plain = await startDaemon(dir, 'plain', port, false);
    daemons.push(plain);
    const snap = await startDaemon(dir, 'snap', port, true);
    daemons.push(snap);
    const huge = hugePages ? await startDaemon(dir, 'huge', port, false, HUGE_PAGES_ENV) : null;
    if (huge !== null) daemons.push(huge);
    const mapped = mmapThreshold
      ? await startDaemon(dir, 'mapped', port, false, MMAP_THRESHOLD_ENV)
      : null;
    if (mapped !== null) daemons.push(mapped);
    opened = directContender(port);
    await opened.open();
    const contenders: Contender[] = [
      opened,
      jugglerContender('juggler', plain),
      httpContender('http', plain),
      jugglerContender('juggler, snapshot', snap),
      httpContender('http, snapshot', snap),
      ...(huge === null
        ? []
        : [jugglerContender('juggler, huge pages', huge), httpContender('http, huge pages', huge)]),
      ...(mapped === null
        ? []
        : [
            jugglerContender('juggler, mmap 128K', mapped),
            httpContender('http, mmap 128K', mapped),
          ]),
    ];
    // The models exist before the rounds (every measured write is an update) and every path has
    // run once.
    const warm = Buffer.alloc(64 * 1024, 7);
    for (const d of daemons) {
      const client = await JugglerClient.connect(d.juggler);
      await client.put('bench.Model', warm); // id 1
      await client.close();
      await httpPut(agent, d.http, `/models/${MODEL_ID + 1}?type=bench.Model`, warm);
    }
    for (const c of contenders) await c.run(warm, 2);
    await new Promise((r) => setTimeout(r, 300));
    for (const d of daemons) d.idleMiB = procStatusMiB(d.pid, 'VmRSS');

    const samples = SIZES.map(() => contenders.map((): Sample[] => []));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [si, size] of SIZES.entries()) {
        const body = Buffer.alloc(size.bytes);
        for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
        body.write(`round ${round}`);
        for (let k = 0; k < contenders.length; k++) {
          const ci = (k + round) % contenders.length;
          samples[si]?.[ci]?.push(await measure(contenders[ci] as Contender, body, size.count));
        }
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    console.log(
      `large models, one writer, sequential updates, event backend (ack registered), ${ROUNDS} interleaved rounds, Hat test peer in its own process:`,
    );
    console.log(
      `  ${'size'.padEnd(8)}${'path'.padEnd(21)}${'writes/s'.padStart(9)}  ${'× direct'.padEnd(19)}${'CPU/w'.padStart(8)}${'idle'.padStart(6)}   ${'peak − idle: med, max (× model)'.padEnd(34)}peak − before: med (MiB)`,
    );
    for (const [si, size] of SIZES.entries()) {
      const per = samples[si] as Sample[][];
      const base = per[0] as Sample[];
      for (const [ci, c] of contenders.entries()) {
        const xs = per[ci] as Sample[];
        const line = row(xs, base, size.bytes, c.daemon?.idleMiB ?? Number.NaN);
        console.log(`  ${size.label.padEnd(8)}${c.name.padEnd(21)}${line}`);
      }
    }
  } finally {
    await (opened ?? direct).close();
    for (const d of daemons) await d.proc.stop();
    await peer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- entry: the peer in its own process, or the bench --------------------------------------------------

if (args[0] === '--peer') {
  const { startHatPeer } = await import('../test/peer/hat-peer.js');
  const peer = await startHatPeer({ flushDelayMs: 1000, engineEvents: false });
  process.stdout.write(`${JSON.stringify({ port: peer.port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void peer.close().then(() => process.exit(0)));
} else {
  await main();
}
