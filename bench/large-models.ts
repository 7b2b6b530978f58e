/**
 * Large models through the daemon (issue 11, goal 2): `node dist/bench/large-models.js [--quick]
 * [--rounds N] [--profile DIR]` (after `npm run build`).
 *
 * One writer, sequential writes of a 1 MiB and a 10 MiB model (updates of one model, so that the
 * stores hold one copy and the daemon's RSS measures the write path, not the models kept), each
 * awaited before the next, against the Hat test peer in a child process of its own:
 * - `direct`: our eventer client (`src/hat/eventer`) in this process registering the AIMM event of
 *   each write (base64 JSON payload, as AIMM writes it) and awaiting `MsgRegisterRes`, subscribed
 *   to its prefix as a Hat client of models is (so Hat's notification comes back to it too);
 * - the daemon (a child process: `serve`, event backend, ack `registered`) without a snapshot and,
 *   a second daemon, with one, each through the Juggler client library (`aimm-store/client`'s
 *   `put` with the id: base64 in JSON over WebSocket) and through HTTP `PUT /models/{id}` (raw
 *   bytes).
 * Every writer has a prefix of its own (no one sees another's notifications). The contenders are
 * interleaved: each round measures each once per size, in an order rotated from round to round;
 * ratios to `direct` are per round (median, range). Also printed: the daemon's peak RSS during a
 * measurement (Linux `VmHWM`, reset through `/proc/<pid>/clear_refs`) above its RSS just before,
 * in multiples of the model (the goal: ≤ 3×), and its CPU time per write (user + system).
 * `--profile DIR` runs the daemons with `--cpu-prof` into DIR.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { modelRegisterEvent } from '../src/backends/event/format.js';
import { JugglerClient } from '../src/client/index.js';
import { connect } from '../src/hat/eventer/client.js';
import type { EventerClient } from '../src/hat/eventer/common.js';
import { median } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MAIN = join(HERE, '..', 'src', 'cli', 'main.js');
const MiB = 1024 * 1024;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const roundsAt = args.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : quick ? 2 : 4;
if (!(Number.isInteger(ROUNDS) && ROUNDS > 0)) throw new Error('--rounds takes a positive integer');
const profileAt = args.indexOf('--profile');
const profileDir = profileAt >= 0 ? (args[profileAt + 1] ?? null) : null;

const SIZES = [
  { label: '1 MiB', bytes: MiB, count: quick ? 4 : 10 },
  { label: '10 MiB', bytes: 10 * MiB, count: quick ? 2 : 3 },
];

interface Child {
  child: ChildProcess;
  line(pred: (l: string) => boolean): Promise<string>;
  stop(): Promise<void>;
}

function start(argv: string[], stdin: 'pipe' | 'ignore' = 'ignore'): Child {
  const child = spawn(process.execPath, argv, { stdio: [stdin, 'pipe', 'inherit'] });
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
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    child,
    line: (pred) => {
      const l = seen.find(pred);
      if (l !== undefined) return Promise.resolve(l);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    stop: async () => {
      if (stdin === 'pipe') child.stdin?.end();
      else child.kill('SIGTERM');
      await exited;
    },
  };
}

/** User + system CPU time of a process, in ms (Linux /proc; 0 elsewhere). */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100
  } catch {
    return 0;
  }
}

function status(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync(`/proc/${pid}/status`, 'utf8'),
  );
  return Number(m?.[1] ?? Number.NaN) / 1024;
}

function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

// ---- the daemons -------------------------------------------------------------------------------

interface Daemon {
  proc: Child;
  pid: number;
  juggler: string;
  http: number;
}

async function startDaemon(dir: string, name: string, port: number, snapshot: boolean) {
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
      hat: { eventer_server: { host: '127.0.0.1', port } },
      control: [
        { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
        { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
      ],
      log: { level: 'info' },
    }),
  );
  const prof = profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  const proc = start([...prof, MAIN, 'serve', '--conf', conf]);
  const portOf = async (control: string) =>
    (
      JSON.parse(
        await proc.line((l) => l.includes('"listening"') && l.includes(`"control":"${control}"`)),
      ) as { port: number }
    ).port;
  const d: Daemon = {
    proc,
    pid: proc.child.pid as number,
    juggler: `ws://127.0.0.1:${await portOf('juggler')}/`,
    http: await portOf('http'),
  };
  await proc.line((l) => l.includes('"msg":"ready"'));
  return d;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function httpPut(port: number, path: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path,
        agent,
        headers: { 'Content-Length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 300)
            reject(new Error(`PUT ${path}: ${res.statusCode} ${Buffer.concat(chunks)}`));
          else resolve();
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

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
        await httpPut(daemon.http, `/models/${MODEL_ID + 1}?type=bench.Model`, body);
      }
    },
  };
}

interface Sample {
  perSec: number;
  /** The daemon's peak RSS above its RSS before, MiB (NaN for the direct client). */
  extraMiB: number;
  cpuMsPerWrite: number;
}

async function measure(c: Contender, body: Buffer, count: number): Promise<Sample> {
  const pid = c.daemon?.pid;
  await new Promise((r) => setTimeout(r, 150));
  const idle = pid === undefined ? Number.NaN : status(pid, 'VmRSS');
  const reset = pid !== undefined && resetPeak(pid);
  const cpu0 = pid === undefined ? 0 : cpuMs(pid);
  const t0 = performance.now();
  await c.run(body, count);
  const ms = performance.now() - t0;
  const cpu = pid === undefined ? Number.NaN : cpuMs(pid) - cpu0;
  const peak = reset && pid !== undefined ? status(pid, 'VmHWM') : Number.NaN;
  return { perSec: (count / ms) * 1000, extraMiB: peak - idle, cpuMsPerWrite: cpu / count };
}

function range(xs: number[]): string {
  const f = (x: number) => x.toFixed(2);
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aimm-large-models-'));
  const peer = start([fileURLToPath(import.meta.url), '--peer'], 'pipe');
  const daemons: Daemon[] = [];
  const direct = { close: async () => {} } as ReturnType<typeof directContender>;
  let opened: ReturnType<typeof directContender> | null = null;
  try {
    const port = (JSON.parse(await peer.line((l) => l.startsWith('{'))) as { port: number }).port;
    const plain = await startDaemon(dir, 'plain', port, false);
    daemons.push(plain);
    const snap = await startDaemon(dir, 'snap', port, true);
    daemons.push(snap);
    opened = directContender(port);
    await opened.open();
    const contenders: Contender[] = [
      opened,
      jugglerContender('juggler', plain),
      httpContender('http', plain),
      jugglerContender('juggler, snapshot', snap),
      httpContender('http, snapshot', snap),
    ];
    // The models exist before the rounds (every measured write is an update) and every path has
    // run once.
    const warm = Buffer.alloc(64 * 1024, 7);
    for (const d of [plain, snap]) {
      const client = await JugglerClient.connect(d.juggler);
      await client.put('bench.Model', warm); // id 1
      await client.close();
      await httpPut(d.http, `/models/${MODEL_ID + 1}?type=bench.Model`, warm);
    }
    for (const c of contenders) await c.run(warm, 2);

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
      `  ${'size'.padEnd(8)}${'path'.padEnd(20)}${'writes/s'.padStart(9)}  ${'× direct'.padEnd(19)}${'daemon CPU/write'.padStart(17)}   peak RSS − before (max MiB, × model)`,
    );
    for (const [si, size] of SIZES.entries()) {
      const per = samples[si] as Sample[][];
      const base = per[0] as Sample[];
      for (const [ci, c] of contenders.entries()) {
        const xs = per[ci] as Sample[];
        const ratio = range(xs.map((x, i) => x.perSec / (base[i] as Sample).perSec));
        const extra = Math.max(...xs.map((x) => x.extraMiB));
        const cpu = median(xs.map((x) => x.cpuMsPerWrite));
        console.log(
          `  ${size.label.padEnd(8)}${c.name.padEnd(20)}${median(xs.map((x) => x.perSec))
            .toFixed(1)
            .padStart(
              9,
            )}  ${ratio.padEnd(19)}${(c.daemon === null ? '' : `${cpu.toFixed(0)} ms`).padStart(17)}   ${c.daemon === null ? '' : `+${extra.toFixed(0)} (${(extra / (size.bytes / MiB)).toFixed(2)}×)`}`,
        );
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
