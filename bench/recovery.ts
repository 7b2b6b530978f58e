/**
 * Recovery on a busy Hat: `node dist/bench/recovery.js [--quick] [--noise N] [--models M]`.
 *
 * The Hat test peer runs in a process of its own (`bench/peer-host.ts`: its walks do not block the
 * backend measured here) and answers timeseries and server queries as hat-event's LMDB backend
 * does, in one "executor" beside its event loop (the peer's `executor` option: walks in slices,
 * `latest` queries, registers and notifications answered in between), with hat-event's default
 * LMDB layout: two catch-all
 * time-series partitions (`timestamp` and `sourceTimestamp`, `[['*']]`) and `latest` for `['*']`;
 * its queries cost what LMDB's do (a walk that decodes every entry it crosses: see
 * `test/peer/hat-peer.ts`). It holds N unrelated events (default 1 000 000; `--quick` 200 000),
 * then M models of 1 KiB under the prefix (default 3000; `--quick` 1000; 10 % of them updated
 * once, 1 % deleted), then 1 % more unrelated events.
 *
 * **Baseline** (AIMM's start, in this process against the same peer, alternating with every case): a plain eventer
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
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type { Backend, BackendContext } from '../src/backend/types.js';
import { create } from '../src/backends/event.js';
import { MetricsRegistry } from '../src/common/metrics.js';
import { createHatConnector } from '../src/hat/eventer/connector.js';
import { copySnapshot, removeSnapshot } from '../test/event-backend/support.js';
import { blob } from './model-bytes.js';
import { type HatModelRow, type RemotePeer, startRemotePeer } from './remote-peer.js';
import { median } from './stats.js';

/** 1000 devices in batches of 2000. */
const NOISE = { devices: 1000, batch: 2000 };

const PREFIX = ['bench', 'model'];
const MODEL = { prefix: PREFIX, type: 'bench.Model', size: 1024 };

export interface Options {
  quick: boolean;
  noise: number;
  models: number;
  rounds: number;
  dir: string;
  log: (line: string) => void;
}

function context(peer: { host: string; port: number }, lines?: string[]): BackendContext {
  return {
    name: 'bench',
    logger:
      lines === undefined
        ? pino({ level: 'silent' })
        : pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }),
    metrics: new MetricsRegistry(),
    hat: createHatConnector({
      addresses: [{ host: peer.host, port: peer.port }],
      clientName: 'aimm-store/bench',
    }),
  };
}

/** AIMM's start: one `latest` query, every payload's JSON and base64 decoded. */
async function baseline(peer: RemotePeer): Promise<number> {
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
  peer: RemotePeer,
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
  const peer = await startRemotePeer({ flushDelayMs: 1000, engineEvents: false, executor: true });
  const base = join(o.dir, 'checkpoint.db');
  const work = join(o.dir, 'work.db');
  try {
    const t0 = performance.now();
    await peer.call('noise', { n: o.noise, ...NOISE });
    await peer.call('create', { ...MODEL, from: 1, to: o.models, seed: 1 });
    const updated = Math.floor(o.models / 10);
    const deleted = Math.floor(o.models / 100);
    const ids = (n: number, f: (i: number) => number) =>
      Array.from({ length: n }, (_, i) => f(i + 1));
    await peer.call('update', { ...MODEL, ids: ids(updated, (i) => i * 7), seed: 2 });
    await peer.call('remove', { ...MODEL, ids: ids(deleted, (i) => i * 11 + 1) });
    // Everything up to here: the entries a pruned time series drops (`prunedCases`).
    const modelsEnd = (await peer.stats()).events;
    await peer.call('noise', { n: Math.floor(o.noise / 100), ...NOISE });
    const live = o.models - deleted;
    // What Hat holds under the prefix: live models, and the sum of their exact revisions (the
    // events of their ids, from the first create on: a deleted and re-created id counts all).
    const expected = async () => {
      let revisions = 0;
      let models = 0;
      for (const [, count, sha] of await hatModels(peer))
        if (sha !== null) {
          models++;
          revisions += count;
        }
      return { models, revisions };
    };
    o.log(
      `  peer (own process): ${(await peer.stats()).events} events (${o.noise} unrelated before the models, ${Math.floor(o.noise / 100)} after), ${o.models} models of 1 KiB (${updated} updated, ${deleted} deleted); seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
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
      await peer.call('noise', { n: 10_000 / deltaUpdates, ...NOISE });
      await peer.call('update', { ...MODEL, ids: [i * 13], seed: 3 });
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
      {
        name: 'no snapshot, history, catch_up auto',
        conf: { full_replay: 'history' },
        exact: true,
        snapshot: false,
      },
      {
        name: 'no snapshot, history, catch_up timeseries',
        conf: { full_replay: 'history', catch_up: 'timeseries' },
        exact: true,
        snapshot: false,
      },
      {
        name: 'no snapshot, history, catch_up server',
        conf: { full_replay: 'history', catch_up: 'server' },
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
        name: 'no snapshot, latest_then_history (default)',
        conf: {},
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
    const now = await expected();
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
        const p0 = (await peer.stats()).queryMs;
        const conf = c.snapshot ? { ...c.conf, snapshot: { path: work } } : c.conf;
        const { ms, completeMs } = await ready(peer, conf, {
          models: now.models,
          revisions: c.exact ? now.revisions : null,
          ...(c.completes === true ? { completes: now.revisions } : {}),
        });
        const row = got.get(c.name) ?? { ms: [], peerMs: [], ratio: [], completeMs: [] };
        row.ms.push(ms);
        if (completeMs !== null) row.completeMs.push(completeMs);
        row.peerMs.push((await peer.stats()).queryMs - p0);
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
    rows.push(...(await standbyCases(peer, o)));
    rows.push(...(await prunedCases(peer, modelsEnd, o, base, work)));
    return rows;
  } finally {
    await peer.close();
    removeSnapshot(base);
    removeSnapshot(work);
    rmSync(o.dir, { recursive: true, force: true });
  }
}

/** Per model id under the prefix in Hat: its events (every server id), sha256 of the last instance. */
async function hatModels(peer: RemotePeer): Promise<HatModelRow[]> {
  return peer.call<HatModelRow[]>('models', { prefix: PREFIX });
}

/** Aborts the bench unless `b` serves exactly Hat's models: live set, exact revisions, bytes. */
async function assertExact(b: Backend, peer: RemotePeer, what: string): Promise<void> {
  const hat = new Map((await hatModels(peer)).map(([id, count, last]) => [id, { count, last }]));
  const models = await b.getModels();
  const live = [...hat].filter(([, v]) => v.last !== null);
  if (models.length !== live.length)
    throw new Error(`${what}: ${models.length} live models, Hat holds ${live.length}`);
  for (const m of models) {
    const h = hat.get(m.instanceId);
    if (h === undefined || h.last === null)
      throw new Error(`${what}: model ${m.instanceId} is not live in Hat`);
    if (m.revision !== h.count)
      throw new Error(`${what}: model ${m.instanceId} revision ${m.revision}, Hat has ${h.count}`);
    if (m.sha256 !== h.last)
      throw new Error(`${what}: model ${m.instanceId} bytes differ from Hat's`);
  }
}

const statusCompleting = (b: Backend) => /completing history/.test(b.status().detail ?? '');

/**
 * Standby start and promotion (redundancy, issue 15 goal 3): an active backend keeps
 * updating models (4 writers, disjoint ids, updates only) while a new standby without a snapshot
 * starts (`whenReady`); right after it is ready the active is "killed" (its writers stop; what it
 * acknowledged before is the acknowledged set) and the standby is promoted as
 * `src/daemon/redundancy.ts` does: `sync()`, then writes. Measured: time to ready (ratio against
 * the baseline of the same round), promotion → first plain write acknowledged, → first
 * compare-and-set write acknowledged (waits for exact revisions). Checked, aborting the bench:
 * every acknowledged write present, and revisions exact once the standby's history is complete.
 */
async function standbyCases(peer: RemotePeer, o: Options): Promise<RecoveryRow[]> {
  const active = create(
    { module: 'x', model_prefix: PREFIX, full_replay: 'latest' },
    context(peer),
  );
  await active.whenReady();
  const ids = (await active.getModels()).map((m) => m.instanceId);
  // Writers' ids and one id only the promoted standby writes (compare-and-set).
  const casId = ids[0] as number;
  const writerIds = ids.slice(1, 401);
  const modes = ['history', 'latest_then_history'] as const;
  const got = new Map<
    string,
    { ready: number[]; ratio: number[]; write: number[]; cas: number[]; writes: number[] }
  >();
  try {
    for (let r = 0; r < o.rounds; r++) {
      for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
        const b0 = median([await baseline(peer), await baseline(peer), await baseline(peer)]);
        let stop = false;
        let killedAt = Number.POSITIVE_INFINITY;
        const acked = new Map<number, { revision: number; sha256: string }>();
        let seed = 1000 * r;
        const writer = async (mine: number[]) => {
          for (let i = 0; !stop; i++) {
            const id = mine[i % mine.length] as number;
            const res = await active.updateModel(id, 'bench.Model', blob(1024, ++seed));
            if (performance.now() < killedAt)
              acked.set(id, { revision: res.meta.revision, sha256: res.meta.sha256 });
          }
        };
        const writers = [0, 1, 2, 3].map((k) => writer(writerIds.filter((_, i) => i % 4 === k)));
        await new Promise((res) => setTimeout(res, 50));
        const t0 = performance.now();
        const standby = create(
          { module: 'x', model_prefix: PREFIX, full_replay: mode },
          context(peer),
        );
        try {
          await standby.whenReady();
          const readyMs = performance.now() - t0;
          const completing = statusCompleting(standby);
          // kill -9 of the active: nothing more is acknowledged to its clients.
          stop = true;
          killedAt = performance.now();
          const k0 = killedAt;
          await standby.sync?.();
          const created = await standby.createModel('bench.Model', blob(1024, 7));
          const writeMs = performance.now() - k0;
          // A compare-and-set needs the exact revision: after latest_then_history's background
          // read (reads serve a lower bound until then, and a CAS against it would conflict).
          while (statusCompleting(standby)) await new Promise((res) => setTimeout(res, 2));
          const cur = (await standby.getModels()).find((m) => m.instanceId === casId);
          if (cur === undefined) throw new Error(`model ${casId} missing on the standby`);
          await standby.updateModel(casId, 'bench.Model', blob(1024, ++seed), {
            expectedRevision: cur.revision,
          });
          const casMs = performance.now() - k0;
          await Promise.all(writers);
          // Every write the active acknowledged before its death is on the promoted standby.
          await standby.sync?.();
          for (const [id, a] of acked) {
            const m = await standby.getModel(id);
            if (m === null || m.revision < a.revision)
              throw new Error(
                `${mode}: acknowledged write of model ${id} (rev ${a.revision}) lost`,
              );
            if (m.revision === a.revision && m.sha256 !== a.sha256)
              throw new Error(`${mode}: model ${id} rev ${a.revision} has other bytes`);
          }
          while (statusCompleting(standby)) await new Promise((res) => setTimeout(res, 2));
          await assertExact(standby, peer, `${mode} standby after promotion`);
          if (created.meta.revision !== 1) throw new Error('the new model is not at revision 1');
          const name = `standby start, ${mode}`;
          const g = got.get(name) ?? { ready: [], ratio: [], write: [], cas: [], writes: [] };
          g.ready.push(readyMs);
          g.ratio.push(readyMs / b0);
          g.write.push(writeMs);
          g.cas.push(casMs);
          g.writes.push(acked.size);
          got.set(name, g);
          if (r === 0)
            o.log(
              `    (${mode}: standby ready while ${completing ? 'completing history' : 'exact'}; ${acked.size} models updated by the active before its death)`,
            );
        } finally {
          stop = true;
          await Promise.allSettled(writers);
          await standby.close();
        }
      }
    }
  } finally {
    await active.close();
  }
  const rows: RecoveryRow[] = [];
  for (const [name, g] of got) {
    const row: RecoveryRow = { case: name, ms: median(g.ready), peerMs: 0, ratio: median(g.ratio) };
    rows.push(row);
    o.log(
      `  ${name.padEnd(42)} ${row.ms.toFixed(0).padStart(7)} ms  ${row.ratio.toFixed(2).padStart(6)}× baseline; promoted: plain write after ${median(g.write).toFixed(0)} ms, compare-and-set after ${median(g.cas).toFixed(0)} ms (acknowledged writes all present, revisions exact)`,
    );
  }
  return rows;
}

/**
 * A snapshot older than what the time series still holds: the peer's partitions drop their
 * oldest entries (LMDB's `limit`) up to and including the last model event before the snapshot
 * (`modelsEnd`: every create, the 10 % updates and 1 % deletes are then only in `latest`, the
 * snapshot's checkpoint too unless `latest` holds it); the 50 delta updates after it stay. Once, at the end (pruning is for good). Each case: ready (ratio against
 * the baseline), how it recovered, and the models checked against Hat's latest (revisions are
 * then lower bounds: the history they counted is gone).
 */
async function prunedCases(
  peer: RemotePeer,
  modelsEnd: number,
  o: Options,
  base: string,
  work: string,
): Promise<RecoveryRow[]> {
  await peer.call('prune', { n: modelsEnd });
  const hat = new Map((await hatModels(peer)).map(([id, count, last]) => [id, { count, last }]));
  const live = [...hat.values()].filter((v) => v.last !== null).length;
  const cases = [
    { name: 'pruned: old snapshot, history', conf: { full_replay: 'history' }, snapshot: true },
    {
      name: 'pruned: old snapshot, latest_then_history',
      conf: { full_replay: 'latest_then_history' },
      snapshot: true,
    },
    { name: 'pruned: no snapshot, history', conf: { full_replay: 'history' }, snapshot: false },
  ];
  const rows: RecoveryRow[] = [];
  for (const c of cases) {
    const b0 = median([await baseline(peer), await baseline(peer), await baseline(peer)]);
    if (c.snapshot) copySnapshot(base, work);
    const lines: string[] = [];
    const t0 = performance.now();
    const b = create(
      {
        module: 'x',
        model_prefix: PREFIX,
        ...c.conf,
        ...(c.snapshot ? { snapshot: { path: work } } : {}),
      },
      context(peer, lines),
    );
    try {
      await b.whenReady();
      const ms = performance.now() - t0;
      while (statusCompleting(b)) await new Promise((res) => setTimeout(res, 2));
      const completeMs = performance.now() - t0;
      const models = await b.getModels();
      if (models.length !== live)
        throw new Error(`${c.name}: ${models.length} live models, Hat holds ${live}`);
      for (const m of models) {
        const h = hat.get(m.instanceId);
        if (h?.last == null || m.sha256 !== h.last || m.revision > h.count)
          throw new Error(`${c.name}: model ${m.instanceId} differs from Hat's latest`);
      }
      const rec = lines
        .map(
          (l) => JSON.parse(l) as { msg: string; mode?: string; via?: string; rebuilt?: boolean },
        )
        .filter((l) => /recovered from Hat/.test(l.msg))
        .at(-1);
      const row: RecoveryRow = { case: c.name, ms, peerMs: 0, ratio: ms / b0, completeMs };
      rows.push(row);
      o.log(
        `  ${c.name.padEnd(42)} ${ms.toFixed(0).padStart(7)} ms  ${row.ratio.toFixed(2).padStart(6)}× baseline  (${rec?.mode} via ${rec?.via}${rec?.rebuilt ? ', rebuilt' : ''}; revisions settled after ${completeMs.toFixed(0)} ms; no model lost)`,
      );
    } finally {
      await b.close();
      if (c.snapshot) removeSnapshot(work);
    }
  }
  return rows;
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

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
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
