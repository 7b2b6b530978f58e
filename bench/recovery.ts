/**
 * Recovery on a busy Hat: `node dist/bench/recovery.js [--quick] [--noise N] [--models M]`.
 *
 * The Hat test peer runs in this process with hat-event's default LMDB layout: two catch-all
 * time-series partitions (`timestamp` and `sourceTimestamp`, `[['*']]`) and `latest` for `['*']`;
 * its queries cost what LMDB's do (a walk that decodes every entry it crosses: see
 * `test/peer/hat-peer.ts`). It holds N unrelated events (default 1 000 000; `--quick` 200 000),
 * then M models of 1 KiB under the prefix (default 3000; `--quick` 1000; 10 % of them updated
 * once, 1 % deleted), then 1 % more unrelated events.
 *
 * **Baseline** (AIMM's start, in the same process, alternating with every case): a plain eventer
 * client connects, sends one `latest` query for `[...prefix, '*']` and decodes every payload (JSON,
 * then the instance's base64). Each case is create → `whenReady()` of the event backend:
 *
 * - no snapshot, `full_replay: history` with `catch_up: auto`, `timeseries`, `server`;
 * - no snapshot, `full_replay: latest`;
 * - no snapshot, `full_replay: latest_then_history` (ready from `latest`; the time until its
 *   background read made every revision exact is reported beside it, and the revisions checked);
 * - a catch-up from a snapshot checkpoint (a copy of one snapshot taken after the models, then
 *   50 model updates among 10 000 more unrelated events), `catch_up: auto` and `server`.
 *
 * Figures: the median over rounds of case / baseline (each ratio against the median of three
 * baseline runs just before the case), the median milliseconds for scale, and the peer's own time
 * answering queries.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type { BackendContext } from '../src/backend/types.js';
import { modelRegisterEvent, tombstoneRegisterEvent } from '../src/backends/event/format.js';
import { create } from '../src/backends/event.js';
import { MetricsRegistry } from '../src/common/metrics.js';
import type { QueryParams, QueryResult, RegisterEvent } from '../src/hat/eventer/common.js';
import { createHatConnector } from '../src/hat/eventer/connector.js';
import { copySnapshot, removeSnapshot } from '../test/event-backend/support.js';
import { type HatPeer, startHatPeer } from '../test/peer/hat-peer.js';
import { registerNoise } from './noise.js';

/** 1000 devices in batches of 2000. */
const NOISE = { devices: 1000, batch: 2000 };

import { median } from './stats.js';

const PREFIX = ['bench', 'model'];

export interface Options {
  quick: boolean;
  noise: number;
  models: number;
  rounds: number;
  dir: string;
  log: (line: string) => void;
}

function context(peer: { host: string; port: number }): BackendContext {
  return {
    name: 'bench',
    logger: pino({ level: 'silent' }),
    metrics: new MetricsRegistry(),
    hat: createHatConnector({
      addresses: [{ host: peer.host, port: peer.port }],
      clientName: 'aimm-store/bench',
    }),
  };
}

function blob(size: number, seed: number): Uint8Array {
  const b = Buffer.alloc(size);
  for (let j = 0; j + 4 <= size; j += 4)
    b.writeUInt32LE((Math.imul(j + 1, 2654435761) ^ seed) >>> 0, j);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The peer's own time answering queries (it runs in this process). */
function timePeerQueries(peer: HatPeer): { ms: number } {
  const acc = { ms: 0 };
  const p = peer as unknown as { query(params: QueryParams): QueryResult };
  const original = p.query.bind(peer);
  p.query = (params) => {
    const t0 = performance.now();
    try {
      return original(params);
    } finally {
      acc.ms += performance.now() - t0;
    }
  };
  return acc;
}

/** AIMM's start: one `latest` query, every payload's JSON and base64 decoded. */
async function baseline(peer: HatPeer): Promise<number> {
  const t0 = performance.now();
  const client = await context(peer).hat?.connect({ subscriptions: [[...PREFIX, '*']] });
  if (client === undefined) throw new Error('no connector');
  try {
    const res = await client.query({ kind: 'latest', eventTypes: [[...PREFIX, '*']] });
    let live = 0;
    for (const e of res.events) {
      if (e.payload?.kind !== 'json') continue;
      const v = JSON.parse(e.payload.text) as { type: string; instance: string };
      if (Buffer.from(v.instance, 'base64').length > 0) live++;
    }
    if (live === 0) throw new Error('baseline found no models');
    return performance.now() - t0;
  } finally {
    await client.close();
  }
}

async function ready(
  peer: HatPeer,
  conf: Record<string, unknown>,
  expect: { models: number; revisions: number | null; completes?: number },
): Promise<{ ms: number; completeMs: number | null }> {
  const t0 = performance.now();
  const b = create({ module: 'x', model_prefix: PREFIX, ...conf }, context(peer));
  try {
    await b.whenReady();
    const ms = performance.now() - t0;
    const models = await b.getModels();
    if (models.length !== expect.models)
      throw new Error(`recovered ${models.length} models, expected ${expect.models}`);
    // Exact revisions: the sum over live models of the events of their ids.
    const sum = models.reduce((n, m) => n + m.revision, 0);
    if (expect.revisions !== null && sum !== expect.revisions)
      throw new Error(`revisions sum to ${sum}, expected ${expect.revisions}`);
    if (expect.completes === undefined) return { ms, completeMs: null };
    // latest_then_history: until the background read is done, the status says so.
    while (/completing history/.test(b.status().detail ?? ''))
      await new Promise((r) => setTimeout(r, 2));
    const completeMs = performance.now() - t0;
    const exact = (await b.getModels()).reduce((n, m) => n + m.revision, 0);
    if (exact !== expect.completes)
      throw new Error(`revisions sum to ${exact} after completion, expected ${expect.completes}`);
    return { ms, completeMs };
  } finally {
    await b.close();
  }
}

export interface RecoveryRow {
  case: string;
  ms: number;
  peerMs: number;
  /** Median over rounds of case / baseline of the same round. */
  ratio: number;
  /** `latest_then_history`: median time until every revision was exact. */
  completeMs?: number;
}

export async function run(o: Options): Promise<RecoveryRow[]> {
  rmSync(o.dir, { recursive: true, force: true });
  const peer = await startHatPeer({ flushDelayMs: 1000, engineEvents: false });
  const peerTime = timePeerQueries(peer);
  const base = join(o.dir, 'checkpoint.db');
  const work = join(o.dir, 'work.db');
  try {
    const t0 = performance.now();
    registerNoise(peer, o.noise, NOISE);
    const data = blob(1024, 1);
    for (let i = 0; i < o.models; i += 500) {
      const batch: RegisterEvent[] = [];
      for (let id = 1 + i; id <= Math.min(o.models, i + 500); id++)
        batch.push(modelRegisterEvent(PREFIX, id, 'bench.Model', data));
      peer.register(batch);
    }
    const updated = Math.floor(o.models / 10);
    const deleted = Math.floor(o.models / 100);
    for (let id = 1; id <= updated; id++)
      peer.register([modelRegisterEvent(PREFIX, id * 7, 'bench.Model', blob(1024, 2))]);
    for (let id = 1; id <= deleted; id++)
      peer.register([tombstoneRegisterEvent(PREFIX, id * 11 + 1)]);
    registerNoise(peer, Math.floor(o.noise / 100), NOISE);
    const live = o.models - deleted;
    // What Hat holds under the prefix: live models, and the sum of their exact revisions (the
    // events of their ids, from the first create on: a deleted and re-created id counts all).
    const expected = () => {
      const counts = new Map<string, number>();
      const dead = new Set<string>();
      for (const e of peer.events) {
        if (e.type.length !== PREFIX.length + 1 || e.type[0] !== PREFIX[0]) continue;
        const k = e.type[PREFIX.length] as string;
        counts.set(k, (counts.get(k) ?? 0) + 1);
        if (e.payload === null) dead.add(k);
        else dead.delete(k);
      }
      let revisions = 0;
      let models = 0;
      for (const [k, c] of counts)
        if (!dead.has(k)) {
          models++;
          revisions += c;
        }
      return { models, revisions };
    };
    o.log(
      `  peer: ${peer.events.length} events (${o.noise} unrelated before the models, ${Math.floor(o.noise / 100)} after), ${o.models} models of 1 KiB (${updated} updated, ${deleted} deleted); seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

    // The checkpoint both catch-ups start from: a snapshot after the models, then a delta.
    await ready(
      peer,
      { snapshot: { path: base }, full_replay: 'latest' },
      {
        models: live,
        revisions: null,
      },
    );
    const deltaUpdates = 50;
    for (let i = 1; i <= deltaUpdates; i++) {
      registerNoise(peer, 10_000 / deltaUpdates, NOISE);
      peer.register([modelRegisterEvent(PREFIX, i * 13, 'bench.Model', blob(1024, 3))]);
    }

    type Case = {
      name: string;
      conf: Record<string, unknown>;
      exact: boolean;
      snapshot: boolean;
      /** Exact after a background read (latest_then_history). */
      completes?: boolean;
    };
    const cases: Case[] = [
      { name: 'no snapshot, history, catch_up auto', conf: {}, exact: true, snapshot: false },
      {
        name: 'no snapshot, history, catch_up timeseries',
        conf: { catch_up: 'timeseries' },
        exact: true,
        snapshot: false,
      },
      {
        name: 'no snapshot, history, catch_up server',
        conf: { catch_up: 'server' },
        exact: true,
        snapshot: false,
      },
      {
        name: 'no snapshot, full_replay latest',
        conf: { full_replay: 'latest' },
        exact: false,
        snapshot: false,
      },
      {
        name: 'no snapshot, latest_then_history',
        conf: { full_replay: 'latest_then_history' },
        exact: false,
        snapshot: false,
        completes: true,
      },
      {
        name: 'checkpoint + delta, catch_up auto',
        conf: { catch_up: 'auto' },
        exact: false,
        snapshot: true,
      },
      {
        name: 'checkpoint + delta, catch_up server',
        conf: { catch_up: 'server' },
        exact: false,
        snapshot: true,
      },
    ];
    const now = expected();
    // Warm-up (JIT, caches), untimed.
    await baseline(peer);
    await ready(peer, { full_replay: 'latest' }, { models: now.models, revisions: null });
    const got = new Map<
      string,
      { ms: number[]; peerMs: number[]; ratio: number[]; completeMs: number[] }
    >();
    const baselineMs: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? cases : [...cases].reverse();
      for (const c of order) {
        // The baseline is short (a few tens of ms): the median of three runs next to the case.
        const b = median([await baseline(peer), await baseline(peer), await baseline(peer)]);
        baselineMs.push(b);
        if (c.snapshot) copySnapshot(base, work);
        const p0 = peerTime.ms;
        const conf = c.snapshot ? { ...c.conf, snapshot: { path: work } } : c.conf;
        const { ms, completeMs } = await ready(peer, conf, {
          models: now.models,
          revisions: c.exact ? now.revisions : null,
          ...(c.completes === true ? { completes: now.revisions } : {}),
        });
        const row = got.get(c.name) ?? { ms: [], peerMs: [], ratio: [], completeMs: [] };
        row.ms.push(ms);
        if (completeMs !== null) row.completeMs.push(completeMs);
        row.peerMs.push(peerTime.ms - p0);
        row.ratio.push(ms / b);
        got.set(c.name, row);
        if (c.snapshot) removeSnapshot(work);
      }
    }
    o.log(
      `  baseline (one latest query + base64 decoding, AIMM's start): ${median(baselineMs).toFixed(0)} ms median`,
    );
    const rows: RecoveryRow[] = [];
    for (const c of cases) {
      const g = got.get(c.name);
      if (g === undefined) continue;
      const row: RecoveryRow = {
        case: c.name,
        ms: median(g.ms),
        peerMs: median(g.peerMs),
        ratio: median(g.ratio),
        ...(g.completeMs.length > 0 ? { completeMs: median(g.completeMs) } : {}),
      };
      rows.push(row);
      const exactNote = c.exact
        ? '  (revisions exact)'
        : row.completeMs !== undefined
          ? `  (revisions exact after ${row.completeMs.toFixed(0)} ms, in the background)`
          : '';
      o.log(
        `  ${row.case.padEnd(42)} ${row.ms.toFixed(0).padStart(7)} ms (peer queries ${row.peerMs.toFixed(0).padStart(6)} ms)  ${row.ratio.toFixed(2).padStart(6)}× baseline${exactNote}`,
      );
    }
    return rows;
  } finally {
    await peer.close();
    removeSnapshot(base);
    removeSnapshot(work);
    rmSync(o.dir, { recursive: true, force: true });
  }
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    noise: quick ? 200_000 : 1_000_000,
    models: quick ? 1000 : 3000,
    rounds: quick ? 1 : 3,
    dir: resolve('.bench-tmp', 'recovery'),
    log: (l) => process.stdout.write(`${l}\n`),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') continue;
    if (a === '--noise') o.noise = Number(argv[++i]);
    else if (a === '--models') o.models = Number(argv[++i]);
    else if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--dir') o.dir = resolve(String(argv[++i]));
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/**
 * The peer's walks decode every entry they cross, and in one synchronous walk over a million
 * entries V8's default young generation promotes garbage and spends most of the time in GC (about
 * 10× the walk itself, unlike Python's reference counting in the real server): the bench runs
 * itself again with a larger semi-space.
 */
const SEMI_SPACE = '--max-semi-space-size=64';

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (!process.execArgv.includes(SEMI_SPACE)) {
    const res = spawnSync(process.execPath, [SEMI_SPACE, ...process.argv.slice(1)], {
      stdio: 'inherit',
    });
    process.exit(res.status ?? 1);
  }
  const o = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  o.log(
    `event backend recovery on a busy Hat (${o.noise} unrelated events in catch-all partitions, ${o.models} models; ratios against AIMM's latest start):`,
  );
  run(o).then(
    () => o.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
