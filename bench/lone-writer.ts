/**
 * Write path through the daemon (issue 11): `node dist/bench/lone-writer.js [--quick]
 * [--profile DIR] [--only lone|many|many-sqlite|many-event] [--windows 1,2,4]` (after
 * `npm run build`).
 *
 * lone — one writer, sequential 1 KiB writes, each awaited before the next:
 * - ours: the `aimm-store/client` Juggler client → the daemon (a child process: `serve`, event
 *   backend without snapshot, ack `registered`) → the Hat test peer;
 * - baseline: our own eventer client (`src/hat/eventer`) in this process registering one AIMM
 *   event per request and awaiting `MsgRegisterRes`, against the same peer, subscribed to its own
 *   prefix like the daemon (which does not see the baseline's events).
 * Run twice: against the bare peer (its own JavaScript only) and against the peer with hat-event's
 * register cost (`test/peer/register-cost.ts`, calibrated from the real server's figures).
 *
 * many — 64 concurrent 1 KiB writes on one Juggler connection (the connection's window of 32
 * pushes back on the rest):
 * - sqlite backend (`synchronous: full`) vs raw better-sqlite3 autocommit INSERTs in this process
 *   (one transaction per write, what AIMM's sqlite backend does; same pragmas, same disk);
 * - event backend vs the direct eventer client registering acked batches of 64 events (the real
 *   server's practical ceiling), both against the realistic peer.
 *
 * The peer runs in a child process of its own (as a Hat server would). Rounds alternate; ratios are
 * medians of ours/baseline. Also printed: the daemon's CPU time per write (user and system, from
 * /proc, over our rounds only), which the peer's cost cannot hide. Each path is warmed up first
 * (the JIT: without it the first thousand writes cost the daemon several times more).
 * `--profile DIR` runs the daemon with `--cpu-prof` into DIR. `--windows 1,2,4` (many, event backend):
 * one daemon (and peer) per register window (`max_registers_in_flight`), their rounds interleaved
 * (default: the backend's default window only). `--answer-delay MS`: the peer sends each register
 * answer MS ms late, in order (a Hat on another host; its CPU cost model unchanged).
 * `--juggler-window N`: the Juggler control's `max_pending_requests` (default 32; a build from before
 * the window refused requests beyond it instead of pushing back, so it needs 64 for 64 writers).
 * `AIMM_BENCH_DAEMON=<other build>/dist/src/cli/main.js` runs another build's daemon instead.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { modelRegisterEvent } from '../src/backends/event/format.js';
import { JugglerClient } from '../src/client/index.js';
import { connect } from '../src/hat/eventer/client.js';
import { type Child, cpuOf, DAEMON_MAIN, startNode } from './child.js';
import { median } from './stats.js';

const _HERE = dirname(fileURLToPath(import.meta.url));
const MAIN = DAEMON_MAIN;
const PREFIX = ['bench', 'model'];
/** The direct client's own prefix: the daemon (subscribed to PREFIX) never sees its events. */
const DIRECT_PREFIX = ['bench', 'direct'];
let directIds = 0;
const SIZE = 1024;
const MANY = 64;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const optionOf = (name: string): string | null => {
  const at = args.indexOf(name);
  return at >= 0 ? (args[at + 1] ?? null) : null;
};
const profileDir = optionOf('--profile');
const only = optionOf('--only');
const answerDelayMs = Number(optionOf('--answer-delay') ?? 0);
const jugglerWindow = optionOf('--juggler-window');
const windows = (optionOf('--windows') ?? '')
  .split(',')
  .filter((w) => w !== '')
  .map(Number);

type PeerKind = 'bare' | 'realistic';

function blob(i: number): Uint8Array {
  const b = Buffer.alloc(SIZE, 46);
  b.write(`model ${i}`);
  return b;
}

interface OursResult {
  perSec: number;
  userUs: number;
  systemUs: number;
}

/** A daemon (child process) with one Juggler control, and a peer when the backend is Hat's. */
class Setup {
  private constructor(
    readonly dir: string,
    readonly peer: Child | null,
    readonly peerPort: number,
    readonly daemon: Child,
    readonly url: string,
  ) {}

  static async start(
    backend: 'event' | 'sqlite',
    peerKind: PeerKind,
    window: number | null = null,
  ): Promise<Setup> {
    const dir = mkdtempSync(join(tmpdir(), 'aimm-lone-writer-'));
    let peer: Child | null = null;
    let port = 0;
    if (backend === 'event') {
      peer = startNode(
        [fileURLToPath(import.meta.url), '--peer', peerKind, String(answerDelayMs)],
        'pipe',
      );
      port = (JSON.parse(await peer.line((l) => l.startsWith('{'))) as { port: number }).port;
    }
    const conf = join(dir, 'daemon.json');
    writeFileSync(
      conf,
      JSON.stringify({
        name: 'bench',
        backend:
          backend === 'event'
            ? {
                module: 'aimm-store/backends/event',
                model_prefix: PREFIX,
                ...(window === null ? {} : { max_registers_in_flight: window }),
              }
            : { module: 'aimm-store/backends/sqlite', path: join(dir, 'models.db') },
        ...(backend === 'event' ? { hat: { eventer_server: { host: '127.0.0.1', port } } } : {}),
        control: [
          {
            module: 'aimm-store/controls/juggler',
            server: { host: '127.0.0.1', port: 0 },
            ...(jugglerWindow === null ? {} : { max_pending_requests: Number(jugglerWindow) }),
          },
        ],
        log: { level: 'info' },
      }),
    );
    const prof = profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
    const daemon = startNode([...prof, MAIN, 'serve', '--conf', conf]);
    const listening = await daemon.line((l) => l.includes('"listening"'));
    const jport = (JSON.parse(listening) as { port: number }).port;
    return new Setup(dir, peer, port, daemon, `ws://127.0.0.1:${jport}/`);
  }

  /** `n` writes by `writers` concurrent callers on one Juggler connection. */
  async ours(n: number, writers: number): Promise<OursResult> {
    const client = await JugglerClient.connect(this.url);
    try {
      await client.put('bench.Model', blob(-1)); // the connection is warm
      const pid = this.daemon.child.pid;
      const cpu0 = cpuOf(pid);
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: writers }, async () => {
          while (next < n) await client.put('bench.Model', blob(next++));
        }),
      );
      const ms = performance.now() - t0;
      const cpu1 = cpuOf(pid);
      return {
        perSec: (n / ms) * 1000,
        userUs: ((cpu1.user - cpu0.user) * 1000) / n,
        systemUs: ((cpu1.system - cpu0.system) * 1000) / n,
      };
    } finally {
      await client.close();
    }
  }

  /** `n` events registered by a direct eventer client, `batch` per acked request. */
  async direct(n: number, batch: number): Promise<number> {
    const client = await connect(
      { host: '127.0.0.1', port: this.peerPort },
      { clientName: 'bench/direct', subscriptions: [[...DIRECT_PREFIX, '*']] },
    );
    const sub = client.events$.subscribe(() => {});
    try {
      const t0 = performance.now();
      for (let i = 0; i < n; i += batch) {
        const events = [];
        for (let j = i; j < Math.min(n, i + batch); j++)
          events.push(modelRegisterEvent(DIRECT_PREFIX, ++directIds, 'bench.Model', blob(j)));
        const res = await client.register(events);
        if (res === null) throw new Error('register refused');
      }
      return (n / (performance.now() - t0)) * 1000;
    } finally {
      sub.unsubscribe();
      await client.close();
    }
  }

  async stop(): Promise<void> {
    await this.daemon.stop();
    await this.peer?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Raw better-sqlite3, one autocommit INSERT per write (AIMM's sqlite backend), writes/s. */
function rawSqlite(dir: string, n: number): number {
  const path = join(dir, `raw-${Math.random().toString(36).slice(2)}.db`);
  const db = new Database(path);
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE models (id INTEGER PRIMARY KEY, type TEXT, instance BLOB)');
    const insert = db.prepare('INSERT INTO models (type, instance) VALUES (?, ?)');
    const t0 = performance.now();
    for (let i = 0; i < n; i++) insert.run('bench.Model', blob(i));
    return (n / (performance.now() - t0)) * 1000;
  } finally {
    db.close();
    for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
  }
}

interface Rounds {
  base: number[];
  ours: number[];
  ratios: number[];
  user: number[];
  system: number[];
}

/** Alternates baseline and ours (order rotating) for `rounds` rounds. */
async function alternate(
  rounds: number,
  baseline: () => Promise<number>,
  ours: () => Promise<OursResult>,
  firstRound = 0,
): Promise<Rounds> {
  const r: Rounds = { base: [], ours: [], ratios: [], user: [], system: [] };
  for (let i = 0; i < rounds; i++) {
    let b = 0;
    let u: OursResult = { perSec: 0, userUs: 0, systemUs: 0 };
    for (const which of (firstRound + i) % 2 === 0 ? ['base', 'ours'] : ['ours', 'base']) {
      if (which === 'base') b = await baseline();
      else u = await ours();
    }
    r.base.push(b);
    r.ours.push(u.perSec);
    r.ratios.push(u.perSec / b);
    r.user.push(u.userUs);
    r.system.push(u.systemUs);
  }
  return r;
}

function report(baseLabel: string, oursLabel: string, r: Rounds): void {
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)} – ${Math.max(...xs).toFixed(2)}`;
  console.log(`  ${baseLabel.padEnd(34)} ${median(r.base).toFixed(0).padStart(6)} writes/s`);
  console.log(
    `  ${oursLabel.padEnd(34)} ${median(r.ours).toFixed(0).padStart(6)} writes/s   ours/baseline ${median(r.ratios).toFixed(2)} (rounds ${range(r.ratios)})`,
  );
  console.log(
    `  ${'daemon CPU per write'.padEnd(34)} ${(median(r.user) + median(r.system)).toFixed(0).padStart(6)} us (user ${median(r.user).toFixed(0)} + system ${median(r.system).toFixed(0)})`,
  );
}

async function lone(peerKind: PeerKind): Promise<void> {
  const s = await Setup.start('event', peerKind);
  try {
    const n = quick ? 500 : 3000;
    const rounds = quick ? 3 : 5;
    await s.direct(quick ? 500 : 2000, 1); // warm-up of both paths (JIT)
    await s.ours(quick ? 1000 : 3000, 1);
    const r = await alternate(
      rounds,
      () => s.direct(n, 1),
      () => s.ours(n, 1),
    );
    console.log(
      `lone writer, 1 KiB sequential writes, ${peerKind} peer, n=${n} x ${rounds} rounds:`,
    );
    report('direct eventer client', 'Juggler -> daemon -> peer', r);
  } finally {
    await s.stop();
  }
}

async function manySqlite(): Promise<void> {
  const s = await Setup.start('sqlite', 'bare');
  try {
    const n = quick ? 3000 : 20_000;
    const rawN = quick ? 300 : 1000;
    const rounds = quick ? 2 : 3;
    await s.ours(quick ? 2000 : 5000, MANY);
    const r = await alternate(
      rounds,
      async () => rawSqlite(s.dir, rawN),
      () => s.ours(n, MANY),
    );
    console.log(`${MANY} writers, 1 KiB, sqlite backend, n=${n} x ${rounds} rounds:`);
    report('raw better-sqlite3 autocommit', 'Juggler -> daemon (sqlite)', r);
  } finally {
    await s.stop();
  }
}

async function manyEvent(): Promise<void> {
  const ws: (number | null)[] = windows.length === 0 ? [null] : windows;
  const setups: Setup[] = [];
  try {
    for (const w of ws) setups.push(await Setup.start('event', 'realistic', w));
    const n = quick ? 3000 : 10_000;
    const rounds = quick ? 2 : 3;
    for (const s of setups) {
      await s.direct(2000, MANY);
      await s.ours(quick ? 2000 : 5000, MANY);
    }
    // Rounds interleave the windows (and, within each, baseline and ours).
    const all = ws.map(() => ({ base: [], ours: [], ratios: [], user: [], system: [] }) as Rounds);
    for (let i = 0; i < rounds; i++) {
      for (const [k, s] of setups.entries()) {
        const r = await alternate(
          1,
          () => s.direct(n, MANY),
          () => s.ours(n, MANY),
          i,
        );
        const into = all[k] as Rounds;
        for (const key of ['base', 'ours', 'ratios', 'user', 'system'] as const)
          into[key].push(...r[key]);
      }
    }
    for (const [k, w] of ws.entries()) {
      const label = w === null ? 'default window' : `window ${w}`;
      console.log(
        `${MANY} writers, 1 KiB, event backend, realistic peer, ${label}, n=${n} x ${rounds} rounds:`,
      );
      report(
        `direct client, acked batches of ${MANY}`,
        'Juggler -> daemon -> peer',
        all[k] as Rounds,
      );
    }
  } finally {
    for (const s of setups) await s.stop();
  }
}

async function main(): Promise<void> {
  if (only === null || only === 'lone') {
    await lone('bare');
    await lone('realistic');
  }
  if (only === null || only === 'many' || only === 'many-sqlite') await manySqlite();
  if (only === null || only === 'many' || only === 'many-event') await manyEvent();
}

// ---- the peer in its own process ---------------------------------------------------------------

if (args[0] === '--peer') {
  const { startHatPeer } = await import('../test/peer/hat-peer.js');
  const { REALISTIC_REGISTER_COST } = await import('../test/peer/register-cost.js');
  const peer = await startHatPeer({
    flushDelayMs: 1000,
    engineEvents: false,
    registerCost: args[1] === 'realistic' ? REALISTIC_REGISTER_COST : null,
    registerAnswerDelayMs: Number(args[2] ?? 0),
  });
  process.stdout.write(`${JSON.stringify({ port: peer.port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void peer.close().then(() => process.exit(0)));
} else {
  await main();
}
