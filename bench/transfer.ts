/**
 * Model history and migrate (issue 13, "Measure and report"): `node dist/bench/transfer.js
 * [--quick | --full] [--rounds R] [--profile DIR]` (after `npm run build`).
 *
 * The Hat test peer runs in a child process of its own (as a Hat server would).
 *
 * 1. **History listing** of one model with R revisions (10 000; `--quick` 2 000), 1 KiB each:
 *    - sqlite backend (`history: {keep: 'all'}`): `getHistory(id)` paged as the CLI pages it
 *      (`limit` 1000, `after` the last revision) until every revision is listed, and
 *      `getRevision(id, 1)`; baseline: `getModels()` of the same file holding R models (the same
 *      number of metadata rows, from the backend's own listing);
 *    - event backend (no snapshot): the same calls, the revisions coming from Hat's time series;
 *      baseline: a plain eventer client reading the same events newest first, pages of 256, each
 *      query bounded by the previous page's timestamp (`tTo`), as the backend queries them, and
 *      decoding every payload (JSON, base64) — what Hat's part costs. Also shown: the same read
 *      without the `tTo` bound (how the backend read before, the baseline of earlier figures),
 *      one unpaged `getHistory(id, {limit})` call, `getRevision` of the newest-but-one revision,
 *      and the event backend's `getModels()` of R models (in-memory state, for scale).
 *    Ratios are medians over repetitions, each against the baseline run just before it.
 * 2. **Migrate** (`migrateModels(source, target, 'keep')`) from a sqlite file into the event
 *    backend (prefix of its own, no snapshot) of N × 1 KiB (default 20 000; `--quick` 2 000;
 *    `--full` 100 000) and M × 1 MiB (200; `--quick` 40; `--full` 1 000) models, against the event
 *    backend's write ceiling: 64 concurrent `createModel` calls writing the same N models into
 *    another prefix. Every run is a fresh child process (so one run's heap does not skew the
 *    next's RSS), and the peer forgets the previous run's events before each; rounds alternate
 *    ceiling and migrate; the ratio is the median of migrate/ceiling models per second. Peak RSS
 *    of the migrating process (sampled every 50 ms) for N and for N/4 models, and the migrate's
 *    own share: its peak minus the ceiling's (same target, same models, no source, no migrate).
 *    `--snapshot`: the targets (ceiling's and migrate's) keep their models in a snapshot file
 *    instead of memory, so that what grows with N is mostly metadata. `--sizes small|large`
 *    runs one of the two migrate sizes only; `--no-history` skips part 1.
 *    `--profile DIR` runs the N-model migrates under `--cpu-prof`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { countModels } from '../src/backend/list-pages.js';
import type { Backend, BackendContext } from '../src/backend/types.js';
import { modelRegisterEvent } from '../src/backends/event/format.js';
import { create as createEvent } from '../src/backends/event.js';
import { create as createSqlite } from '../src/backends/sqlite.js';
import { MetricsRegistry } from '../src/common/metrics.js';
import { connect } from '../src/hat/eventer/client.js';
import type { EventId, RegisterEvent, Timestamp } from '../src/hat/eventer/common.js';
import { timeseriesQuery } from '../src/hat/eventer/common.js';
import { createHatConnector } from '../src/hat/eventer/connector.js';
import { migrateModels } from '../src/transfer/migrate.js';
import { startNode } from './child.js';
import { median } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const KIB = 1024;
const MIB = 1024 * 1024;
const TYPE = 'bench.Model';
const CEILING_WRITERS = 64;

const args = process.argv.slice(2);

// ---- helpers ------------------------------------------------------------------------------------

function context(port: number): BackendContext {
  return {
    name: 'bench',
    logger: pino({ level: 'silent' }),
    metrics: new MetricsRegistry(),
    hat: createHatConnector({
      addresses: [{ host: '127.0.0.1', port }],
      clientName: 'aimm-store/bench',
    }),
  };
}

const bases = new Map<number, Buffer>();
/** Distinct bytes per `seed` (a shared pseudo-random base with the seed written in front). */
function blob(size: number, seed: number): Uint8Array {
  let base = bases.get(size);
  if (base === undefined) {
    base = Buffer.alloc(size);
    for (let j = 0; j + 4 <= size; j += 4)
      base.writeUInt32LE(Math.imul(j + 1, 2654435761) >>> 0, j);
    bases.set(size, base);
  }
  const b = Buffer.from(base);
  b.writeUInt32LE(seed >>> 0, 0);
  b.writeUInt32LE(Math.floor(seed / 2 ** 32), 4);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

async function openSqlite(path: string, extra: Record<string, unknown> = {}): Promise<Backend> {
  return createSqlite(
    { module: 'x', path, synchronous: 'normal', ...extra },
    {
      name: 'bench',
      logger: pino({ level: 'silent' }),
      metrics: new MetricsRegistry(),
      hat: null,
    },
  );
}

async function openEvent(
  port: number,
  prefix: string[],
  snapshot: string | null = null,
): Promise<Backend> {
  const b = createEvent(
    {
      module: 'x',
      model_prefix: prefix,
      ...(snapshot === null ? {} : { snapshot: { path: snapshot } }),
    },
    context(port),
  );
  await b.whenReady();
  return b;
}

/** Runs `task(i)` for i in [0, n) with `concurrency` at once. */
async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) await task(i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

const fmtMs = (ms: number) =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`;
const mb = (bytes: number) => `${(bytes / MIB).toFixed(0)} MiB`;

// ---- child processes ----------------------------------------------------------------------------

/** The Hat test peer's child process: its port, and a reset between runs. */
interface Peer {
  port: number;
  reset(): Promise<void>;
}

interface Job {
  kind: 'ceiling' | 'migrate';
  port: number;
  prefix: string[];
  n: number;
  size: number;
  source?: string;
  /** Target snapshot file (none: models in memory). */
  snapshot?: string;
  /** Sample retained memory (forced full GC every {@link RETAINED_EVERY_MS}); slows the run. */
  retained?: boolean;
}

const RETAINED_EVERY_MS = 200;

interface JobResult {
  ms: number;
  perSec: number;
  startRss: number;
  peakRss: number;
  /** JS heap + external memory right after the run and a full GC, backends still open: what stays held. */
  held: number;
  /** With `retained`: the most heap + external memory found live (after a forced GC) during the run. */
  retainedPeak?: number;
}

/** One ceiling or migrate run, in this (fresh) process. */
async function runJob(job: Job): Promise<JobResult> {
  const target = await openEvent(job.port, job.prefix, job.snapshot ?? null);
  const source = job.source === undefined ? null : await openSqlite(job.source);
  try {
    if (source !== null && (await countModels(source)) !== job.n)
      throw new Error(`source ${job.source} does not hold ${job.n} models`);
    global.gc?.();
    const startRss = process.memoryUsage().rss;
    let peakRss = startRss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 50);
    let retainedPeak = 0;
    const live = () => {
      global.gc?.();
      const m = process.memoryUsage();
      retainedPeak = Math.max(retainedPeak, m.heapUsed + m.external);
    };
    if (job.retained === true) live();
    const gcSampler = job.retained === true ? setInterval(live, RETAINED_EVERY_MS) : null;
    const t0 = performance.now();
    if (job.kind === 'ceiling') {
      await pool(job.n, CEILING_WRITERS, async (i) => {
        await target.createModel(TYPE, blob(job.size, i + 1));
      });
    } else {
      if (source === null) throw new Error('migrate without a source');
      const report = await migrateModels(source, target, 'keep');
      if (report.created !== job.n || report.verified !== job.n || report.conflicts.length > 0)
        throw new Error(`migrate report: ${JSON.stringify(report).slice(0, 400)}`);
    }
    if (gcSampler !== null) clearInterval(gcSampler);
    const ms = performance.now() - t0;
    clearInterval(sampler);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const count = await countModels(target);
    if (count !== job.n) throw new Error(`target holds ${count} models, expected ${job.n}`);
    global.gc?.();
    const mem = process.memoryUsage();
    return {
      ms,
      perSec: (job.n / ms) * 1000,
      startRss,
      peakRss,
      held: mem.heapUsed + mem.external,
      ...(job.retained === true ? { retainedPeak } : {}),
    };
  } finally {
    await source?.close();
    await target.close();
  }
}

async function spawnJob(job: Job, prof: string[] = []): Promise<JobResult> {
  const c = startNode(['--expose-gc', ...prof, SELF, '--job', JSON.stringify(job)]);
  const line = await c.line((l) => l.startsWith('{'));
  const code = await c.exited;
  if (code !== 0) throw new Error(`${job.kind} job exited with ${code}`);
  return JSON.parse(line) as JobResult;
}

// ---- 1. history ---------------------------------------------------------------------------------

/** Every revision, paged as `aimm-store history` pages it. */
async function listAll(b: Backend, id: number, expect: number): Promise<number> {
  const getHistory = b.getHistory?.bind(b);
  if (getHistory === undefined) throw new Error('backend without history');
  let after = 0;
  let n = 0;
  for (;;) {
    const page = await getHistory(id, { after, limit: 1000 });
    if (page === null || page.length === 0) break;
    n += page.length;
    after = (page.at(-1) as { revision: number }).revision;
  }
  if (n !== expect) throw new Error(`history listed ${n} revisions, expected ${expect}`);
  return n;
}

interface Timed {
  name: string;
  run: () => Promise<unknown>;
}

/** Median ms of each case over `reps` repetitions, and of case / baseline (run just before it). */
async function timeCases(baseline: Timed, cases: Timed[], reps: number) {
  const time = async (t: Timed) => {
    const t0 = performance.now();
    await t.run();
    return performance.now() - t0;
  };
  await baseline.run(); // warm-up
  for (const c of cases) await c.run();
  const base: number[] = [];
  const got = new Map<string, { ms: number[]; ratio: number[] }>();
  for (let r = 0; r < reps; r++) {
    for (const c of r % 2 === 0 ? cases : [...cases].reverse()) {
      const b = await time(baseline);
      base.push(b);
      const ms = await time(c);
      const g = got.get(c.name) ?? { ms: [], ratio: [] };
      g.ms.push(ms);
      g.ratio.push(ms / b);
      got.set(c.name, g);
    }
  }
  return { baseMs: median(base), rows: cases.map((c) => ({ name: c.name, ...got.get(c.name) })) };
}

function printCases(baseName: string, t: Awaited<ReturnType<typeof timeCases>>) {
  console.log(`    baseline: ${baseName.padEnd(44)} ${fmtMs(t.baseMs).padStart(8)}`);
  for (const r of t.rows) {
    console.log(
      `    ${r.name.padEnd(54)} ${fmtMs(median(r.ms ?? [])).padStart(8)}  ${median(r.ratio ?? [])
        .toFixed(2)
        .padStart(7)}× baseline`,
    );
  }
}

async function historyBench(port: number, dir: string, revs: number, reps: number) {
  console.log(`history of one model with ${revs} revisions of 1 KiB (median of ${reps}):`);
  // sqlite: model 1 with `revs` revisions, models 2..revs for the baseline listing.
  const s = await openSqlite(join(dir, 'history.db'), { history: { keep: 'all' } });
  try {
    const t0 = performance.now();
    await s.createModel(TYPE, blob(KIB, 0));
    // Concurrent updates of one id: committed in groups, each a revision.
    await pool(revs - 1, 256, async (i) => {
      await s.updateModel(1, TYPE, blob(KIB, i + 1));
    });
    await pool(revs - 1, 256, async (i) => {
      await s.createModel(TYPE, blob(KIB, 1_000_000 + i));
    });
    const metas = await s.getModels();
    if (metas.length !== revs || metas[0]?.revision !== revs)
      throw new Error('sqlite history seed went wrong');
    console.log(`  sqlite (history keep all; seeded in ${fmtMs(performance.now() - t0)}):`);
    const t = await timeCases(
      { name: 'getModels', run: () => s.getModels() },
      [
        { name: `getHistory, all pages of 1000`, run: () => listAll(s, 1, revs) },
        {
          name: 'getRevision(id, 1)',
          run: async () => {
            if ((await s.getRevision?.(1, 1))?.revision !== 1) throw new Error('no revision 1');
          },
        },
      ],
      reps,
    );
    printCases(`getModels() of ${revs} models`, t);
  } finally {
    await s.close();
  }

  // event backend: the same shape in Hat, registered directly.
  const prefix = ['bench', 'history'];
  const client = await connect(
    { host: '127.0.0.1', port },
    { clientName: 'bench/seed', subscriptions: [] },
  );
  const t0 = performance.now();
  try {
    const send = async (events: RegisterEvent[]) => {
      if ((await client.register(events)) === null) throw new Error('register refused');
    };
    for (let i = 0; i < revs; i += 500) {
      const batch: RegisterEvent[] = [];
      for (let k = i; k < Math.min(revs, i + 500); k++)
        batch.push(modelRegisterEvent(prefix, 1, TYPE, blob(KIB, k)));
      await send(batch);
    }
    for (let i = 2; i <= revs; i += 500) {
      const batch: RegisterEvent[] = [];
      for (let id = i; id < Math.min(revs + 1, i + 500); id++)
        batch.push(modelRegisterEvent(prefix, id, TYPE, blob(KIB, 1_000_000 + id)));
      await send(batch);
    }
  } finally {
    await client.close();
  }
  const e = await openEvent(port, prefix);
  const raw = await connect(
    { host: '127.0.0.1', port },
    { clientName: 'bench/raw', subscriptions: [] },
  );
  try {
    const metas = await e.getModels();
    if (metas.length !== revs || metas[0]?.revision !== revs)
      throw new Error('event history seed went wrong');
    console.log(
      `  event backend (no snapshot; seeded and recovered in ${fmtMs(performance.now() - t0)}):`,
    );
    /**
     * Hat's part: the model's events, newest first, pages of 256, payloads decoded; each query
     * bounded by the previous page's last timestamp (`bounded`, as the backend reads) or not.
     */
    const rawRead = async (bounded: boolean) => {
      let lastEventId: EventId | null = null;
      let tTo: Timestamp | null = null;
      let n = 0;
      for (;;) {
        const res = await raw.query(
          timeseriesQuery({
            eventTypes: [[...prefix, '1']],
            order: 'descending',
            orderBy: 'timestamp',
            maxResults: 256,
            lastEventId,
            tTo: bounded ? tTo : null,
          }),
        );
        for (const ev of res.events) {
          if (ev.payload?.kind !== 'json') continue;
          const v = JSON.parse(ev.payload.text) as { instance: string };
          if (Buffer.from(v.instance, 'base64').length > 0) n++;
        }
        const last = res.events.at(-1);
        if (!res.moreFollows || last === undefined) break;
        lastEventId = last.id;
        tTo = last.timestamp;
      }
      if (n !== revs) throw new Error(`raw read ${n} events, expected ${revs}`);
    };
    const t = await timeCases(
      { name: 'raw', run: () => rawRead(true) },
      [
        { name: 'eventer client, without the tTo bound (as before)', run: () => rawRead(false) },
        { name: `getHistory, all pages of 1000`, run: () => listAll(e, 1, revs) },
        {
          name: `getHistory, one call (limit ${revs})`,
          run: async () => {
            if ((await e.getHistory?.(1, { limit: revs }))?.length !== revs)
              throw new Error('short history');
          },
        },
        {
          name: 'getRevision(id, 1)',
          run: async () => {
            if ((await e.getRevision?.(1, 1))?.revision !== 1) throw new Error('no revision 1');
          },
        },
        {
          name: `getRevision(id, ${revs - 1})`,
          run: async () => {
            if ((await e.getRevision?.(1, revs - 1))?.revision !== revs - 1)
              throw new Error(`no revision ${revs - 1}`);
          },
        },
        { name: `getModels() of ${revs} models (in memory)`, run: () => e.getModels() },
      ],
      reps,
    );
    printCases('eventer client reads the events (tTo)', t);
  } finally {
    await raw.close();
    await e.close();
  }
}

// ---- 2. migrate ---------------------------------------------------------------------------------

async function seedSource(path: string, n: number, size: number): Promise<number> {
  const t0 = performance.now();
  const s = await openSqlite(path);
  try {
    await pool(n, 64, async (i) => {
      await s.createModel(TYPE, blob(size, i + 1));
    });
  } finally {
    await s.close();
  }
  return performance.now() - t0;
}

let prefixSeq = 0;

async function migrateBench(
  peer: Peer,
  dir: string,
  n: number,
  size: number,
  rounds: number,
  profileDir: string | null,
  snapshot: boolean,
) {
  const port = peer.port;
  const label = size === KIB ? '1 KiB' : '1 MiB';
  const full = join(dir, `source-${size}-${n}.db`);
  const quarter = join(dir, `source-${size}-${n / 4}.db`);
  const seedMs = (await seedSource(full, n, size)) + (await seedSource(quarter, n / 4, size));
  console.log(
    `migrate sqlite -> event backend${snapshot ? ' with a snapshot' : ''}, ${n} x ${label} (sources seeded in ${fmtMs(seedMs)}; ${rounds} round(s)):`,
  );
  const prof = profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  const job = (kind: Job['kind'], count: number, source?: string, retained = false): Job => ({
    kind,
    ...(retained ? { retained } : {}),
    port,
    prefix: ['bench', `${kind}${++prefixSeq}`],
    n: count,
    size,
    ...(source === undefined ? {} : { source }),
    ...(snapshot ? { snapshot: join(dir, `snapshot-${prefixSeq}.db`) } : {}),
  });
  /** A run on a peer that holds nothing else; its snapshot removed afterwards. */
  const run = async (j: Job, prof: string[] = []) => {
    await peer.reset();
    try {
      return await spawnJob(j, prof);
    } finally {
      if (j.snapshot !== undefined)
        for (const suffix of ['', '-wal', '-shm', '-journal'])
          rmSync(`${j.snapshot}${suffix}`, { force: true });
    }
  };
  const ceil: JobResult[] = [];
  const mig: JobResult[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let c: JobResult | null = null;
    let m: JobResult | null = null;
    for (const kind of r % 2 === 0 ? ['ceiling', 'migrate'] : ['migrate', 'ceiling']) {
      if (kind === 'ceiling') c = await run(job('ceiling', n));
      else m = await run(job('migrate', n, full), prof);
    }
    if (c === null || m === null) throw new Error('unreachable');
    ceil.push(c);
    mig.push(m);
    ratios.push(m.perSec / c.perSec);
  }
  const q = await run(job('migrate', n / 4, quarter));
  const qc = await run(job('ceiling', n / 4));
  const perSec = (xs: JobResult[]) => median(xs.map((x) => x.perSec));
  const peak = median(mig.map((x) => x.peakRss));
  const start = median(mig.map((x) => x.startRss));
  console.log(
    `  ceiling: ${CEILING_WRITERS} concurrent createModel  ${perSec(ceil).toFixed(0).padStart(7)} models/s  (${median(ceil.map((x) => x.ms)).toFixed(0)} ms; peak RSS ${mb(median(ceil.map((x) => x.peakRss)))})`,
  );
  console.log(
    `  migrateModels(keep)                  ${perSec(mig).toFixed(0).padStart(7)} models/s  (${median(mig.map((x) => x.ms)).toFixed(0)} ms)  migrate/ceiling ${median(ratios).toFixed(2)}  [${ratios.map((x) => x.toFixed(2)).join(', ')}]`,
  );
  const held = median(mig.map((x) => x.held));
  const heldC = median(ceil.map((x) => x.held));
  const perModel = (bytes: number) => `${(bytes / ((3 * n) / 4) / KIB).toFixed(1)} KiB per model`;
  console.log(
    `  migrate peak RSS: ${n} models ${mb(peak)} (from ${mb(start)} at start); ${n / 4} models ${mb(q.peakRss)} (from ${mb(q.startRss)}); difference ${mb(peak - q.peakRss)} = ${perModel(peak - q.peakRss)} (model ${label})`,
  );
  console.log(
    `  held after the run and a full GC (heap + external: the target's state — its metadata, and without a snapshot every model's bytes): migrate ${n} models ${mb(held)}, ${n / 4} models ${mb(q.held)} (${perModel(held - q.held)}); ceiling ${n} models ${mb(heldC)}, ${n / 4} models ${mb(qc.held)} (${perModel(heldC - qc.held)})`,
  );
  const ceilPeak = median(ceil.map((x) => x.peakRss));
  console.log(
    `  ceiling peak RSS for comparison (same target, no source, no migrate bookkeeping): ${n} models ${mb(ceilPeak)}, ${n / 4} models ${mb(qc.peakRss)}`,
  );
  // Retained memory: live heap + external found by forced GCs during a run, less what stays held
  // after it (the target's models and state): the migrate's (or the ceiling's) own bookkeeping.
  const ownRetained = async (kind: Job['kind'], count: number, source?: string) => {
    const r = await run(job(kind, count, source, true));
    return (r.retainedPeak ?? 0) - r.held;
  };
  const rm = await ownRetained('migrate', n, full);
  const rmq = await ownRetained('migrate', n / 4, quarter);
  const rc = await ownRetained('ceiling', n);
  const rcq = await ownRetained('ceiling', n / 4);
  console.log(
    `  retained during the run beyond what stays held after it (forced GC every ${RETAINED_EVERY_MS} ms): migrate ${n} models ${mb(rm)}, ${n / 4} models ${mb(rmq)} (${perModel(rm - rmq)}); ceiling ${n} models ${mb(rc)}, ${n / 4} models ${mb(rcq)} (${perModel(rc - rcq)})`,
  );
  const own = peak - ceilPeak;
  const ownQ = q.peakRss - qc.peakRss;
  console.log(
    `  migrate's own share of the peak (migrate − ceiling): ${n} models ${mb(own)}, ${n / 4} models ${mb(ownQ)}; growth ${mb(own - ownQ)} = ${perModel(own - ownQ)} [per round: ${mig.map((m, i) => mb(m.peakRss - (ceil[i] as JobResult).peakRss)).join(', ')}]`,
  );
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const quick = args.includes('--quick');
  const fullRun = args.includes('--full');
  const at = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? (args[i + 1] ?? null) : null;
  };
  const rounds = Number(at('--rounds') ?? (quick ? 1 : 2));
  const profileDir = at('--profile');
  const revs = quick ? 2000 : 10_000;
  const nSmall = fullRun ? 100_000 : quick ? 2000 : 20_000;
  const nLarge = fullRun ? 1000 : quick ? 40 : 200;
  const snapshot = args.includes('--snapshot');
  const sizes = at('--sizes') ?? 'both';
  if (!['both', 'small', 'large'].includes(sizes)) throw new Error('--sizes: small, large or both');
  const dir = mkdtempSync(join(tmpdir(), 'aimm-transfer-bench-'));
  const child = startNode(['--expose-gc', SELF, '--peer'], 'pipe');
  const t0 = performance.now();
  console.log(
    `transfer bench${quick ? ' (--quick)' : fullRun ? ' (--full)' : ''}; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  try {
    const port = (JSON.parse(await child.line((l) => l.startsWith('{'))) as { port: number }).port;
    let resets = 0;
    const peer: Peer = {
      port,
      reset: async () => {
        const tag = `reset-ok ${++resets}`;
        child.send(`reset ${resets}`);
        await child.line((l) => l === tag);
      },
    };
    if (!args.includes('--no-history')) await historyBench(port, dir, revs, quick ? 3 : 5);
    if (sizes !== 'large') await migrateBench(peer, dir, nSmall, KIB, rounds, profileDir, snapshot);
    if (sizes !== 'small') await migrateBench(peer, dir, nLarge, MIB, rounds, profileDir, snapshot);
    console.log(
      `done in ${((performance.now() - t0) / 1000).toFixed(0)} s; load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args[0] === '--peer') {
  const { startHatPeer } = await import('../test/peer/hat-peer.js');
  const peer = await startHatPeer({ flushDelayMs: 1000, engineEvents: false });
  process.stdout.write(`${JSON.stringify({ port: peer.port })}\n`);
  // `reset K`: forget every stored event (the next run starts on an empty peer); answers `reset-ok K`.
  let partial = '';
  process.stdin.on('data', (b: Buffer) => {
    partial += b.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      const m = /^reset (\d+)$/.exec(l);
      if (m === null) continue;
      peer.resetStore();
      global.gc?.();
      process.stdout.write(`reset-ok ${m[1]}\n`);
    }
  });
  process.stdin.on('end', () => void peer.close().then(() => process.exit(0)));
} else if (args[0] === '--job') {
  runJob(JSON.parse(String(args[1])) as Job).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`job failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
} else {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
