/**
 * event backend benchmark: `node dist/bench/event.js [--quick] [--only writes|restart|rss|noisy]`.
 *
 * Everything runs against the Hat test peer (test/peer/hat-peer.ts) on loopback, started in this
 * process (the peer's own work — decoding, Python-style JSON normalisation, notifying — is part of
 * every figure, for the baseline as much as for us):
 *
 * 1. writes/s for 1 KiB, 64 KiB and 1 MiB instances at concurrency 1 and 64: the event backend
 *    (`createModel`, ack `registered`) against a plain eventer client that sends one register
 *    request per write and awaits its response (the unbatched baseline), alternating in rounds,
 *    each round on a reset peer; the ratio is the median over rounds of ours/baseline.
 * 2. restart time (create → whenReady) for 10k and 100k models: full replay (`history`: the
 *    prefix's history in pages, read from a time series (`catch_up: auto`) and with server queries
 *    (`catch_up: server`), with the peer's own time answering the queries; `latest`: AIMM's one
 *    latest query) against a restart from a snapshot plus a delta of 1% updates.
 * 3. peak RSS of a child process recovering 10k × 64 KiB models: without a snapshot (bytes in
 *    memory), with a snapshot being built, and restarting from that snapshot; plus an idle child
 *    for scale.
 * 4. a noisy Hat (`--only noisy`): 10k models among 200k unrelated events; full replay and a
 *    snapshot catch-up (100 model updates among 20k unrelated events), `catch_up: server` against
 *    `catch_up: auto` (which reads a type-filtered time series): time, bytes received (a counting
 *    proxy between backend and peer), events received, and the peer's own time answering queries.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type { BackendContext } from '../src/backend/types.js';
import { modelRegisterEvent } from '../src/backends/event/format.js';
import { create } from '../src/backends/event.js';
import { MetricsRegistry } from '../src/common/metrics.js';
import type { RegisterEvent } from '../src/hat/eventer/common.js';
import { createHatConnector } from '../src/hat/eventer/connector.js';
import {
  copySnapshot,
  metricValue,
  removeSnapshot,
  startRecordingProxy,
} from '../test/event-backend/support.js';
import { type HatPeer, startHatPeer } from '../test/peer/hat-peer.js';
import { registerNoise, timePeerQueries } from './peer-load.js';
import { median } from './stats.js';

const PREFIX = ['bench', 'model'];
const SIZES: [string, number][] = [
  ['1 KiB', 1024],
  ['64 KiB', 64 * 1024],
  ['1 MiB', 1024 * 1024],
];
const CONCURRENCY = [1, 64];

export interface Options {
  quick: boolean;
  only: string | null;
  dir: string;
  log: (line: string) => void;
}

function context(
  peer: { host: string; port: number },
  metrics = new MetricsRegistry(),
): BackendContext {
  return {
    name: 'bench',
    logger: pino({ level: 'silent' }),
    metrics,
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

/** Runs `total` calls of `fn` with `concurrency` workers; returns elapsed ms. */
async function drive(total: number, concurrency: number, fn: (i: number) => Promise<unknown>) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) await fn(next++);
    }),
  );
  return performance.now() - t0;
}

function writesFor(size: number, quick: boolean): number {
  const full = size <= 1024 ? 3000 : size <= 64 * 1024 ? 600 : 64;
  return quick ? Math.max(24, Math.round(full / 5)) : full;
}

// ---- 1. writes ---------------------------------------------------------------------------------

export interface WriteRow {
  size: string;
  concurrency: number;
  writes: number;
  baselinePerSec: number;
  oursPerSec: number;
  ratio: number;
  meanBatch: number;
}

async function baselineRound(peer: HatPeer, size: number, c: number, n: number) {
  const client = await context(peer).hat?.connect({ subscriptions: [[...PREFIX, '*']] });
  if (client === undefined) throw new Error('no connector');
  const blobs = Array.from({ length: 8 }, (_, i) => blob(size, i));
  const sub = client.events$.subscribe(() => {});
  try {
    const ms = await drive(n, c, async (i) => {
      const ev: RegisterEvent = modelRegisterEvent(
        PREFIX,
        i + 1,
        'bench.Model',
        blobs[i % 8] as Uint8Array,
      );
      const res = await client.register([ev]);
      if (res === null) throw new Error('register failed');
    });
    return (n / ms) * 1000;
  } finally {
    sub.unsubscribe();
    await client.close();
  }
}

async function oursRound(peer: HatPeer, size: number, c: number, n: number) {
  const ctx = context(peer);
  const b = create({ module: 'x', model_prefix: PREFIX }, ctx);
  await b.whenReady();
  const blobs = Array.from({ length: 8 }, (_, i) => blob(size, i));
  try {
    const ms = await drive(n, c, async (i) => {
      const r = await b.createModel('bench.Model', blobs[i % 8] as Uint8Array);
      if (r.ack !== 'registered') throw new Error('unexpected ack');
    });
    const reqs = metricValue(ctx, 'event_register_requests_total', 'result="events"');
    const evs = metricValue(ctx, 'event_register_events_total');
    return { perSec: (n / ms) * 1000, meanBatch: evs / reqs };
  } finally {
    await b.close();
  }
}

export async function runWrites(o: Options): Promise<WriteRow[]> {
  const rows: WriteRow[] = [];
  const rounds = o.quick ? 1 : 3;
  const peer = await startHatPeer({ flushDelayMs: 1000, engineEvents: false });
  try {
    for (const [label, size] of SIZES) {
      for (const c of CONCURRENCY) {
        const n = writesFor(size, o.quick);
        const base: number[] = [];
        const ours: number[] = [];
        const ratios: number[] = [];
        const batches: number[] = [];
        for (let r = 0; r < rounds; r++) {
          const order = r % 2 === 0 ? ['base', 'ours'] : ['ours', 'base'];
          let b = 0;
          let u = 0;
          for (const which of order) {
            peer.resetStore();
            if (which === 'base') b = await baselineRound(peer, size, c, n);
            else {
              const res = await oursRound(peer, size, c, n);
              u = res.perSec;
              batches.push(res.meanBatch);
            }
          }
          peer.resetStore();
          base.push(b);
          ours.push(u);
          ratios.push(u / b);
        }
        const row: WriteRow = {
          size: label,
          concurrency: c,
          writes: n,
          baselinePerSec: median(base),
          oursPerSec: median(ours),
          ratio: median(ratios),
          meanBatch: median(batches),
        };
        rows.push(row);
        o.log(
          `  ${label.padEnd(6)} c=${String(c).padEnd(2)} n=${String(n).padEnd(5)} baseline ${row.baselinePerSec.toFixed(0).padStart(6)}/s  ours ${row.oursPerSec.toFixed(0).padStart(6)}/s  ours/baseline ${row.ratio.toFixed(2)}  (mean batch ${row.meanBatch.toFixed(1)})`,
        );
      }
    }
  } finally {
    await peer.close();
  }
  return rows;
}

// ---- 2. restart --------------------------------------------------------------------------------

export interface RestartRow {
  models: number;
  /** Full replay, `catch_up: auto` (a timeseries read) and `server`; of which the peer's queries. */
  historyMs: number;
  historyPeerMs: number;
  historyServerMs: number;
  historyServerPeerMs: number;
  latestMs: number;
  snapshotDeltaMs: number;
  delta: number;
  ratio: number;
}

function seed(peer: HatPeer, count: number, size: number, tag: number): void {
  const data = blob(size, tag);
  for (let i = 0; i < count; i += 1000) {
    const batch: RegisterEvent[] = [];
    for (let id = 1 + i; id <= Math.min(count, i + 1000); id++)
      batch.push(modelRegisterEvent(PREFIX, id, 'bench.Model', data));
    peer.register(batch);
  }
}

async function timeRecovery(
  peer: { host: string; port: number },
  extra: Record<string, unknown>,
): Promise<number> {
  const t0 = performance.now();
  const b = create({ module: 'x', model_prefix: PREFIX, ...extra }, context(peer));
  await b.whenReady();
  const ms = performance.now() - t0;
  const n = (await b.getModels()).length;
  await b.close();
  if (n === 0) throw new Error('nothing recovered');
  return ms;
}

export async function runRestart(o: Options): Promise<RestartRow[]> {
  const rows: RestartRow[] = [];
  for (const n of o.quick ? [10_000] : [10_000, 100_000]) {
    const peer = await startHatPeer({ flushDelayMs: 1000, engineEvents: false });
    const path = join(o.dir, `restart-${n}.db`);
    removeSnapshot(path);
    const peerTime = timePeerQueries(peer);
    const timed = async (extra: Record<string, unknown>) => {
      const p0 = peerTime.ms;
      const ms = await timeRecovery(peer, extra);
      return { ms, peerMs: peerTime.ms - p0 };
    };
    try {
      seed(peer, n, 256, 1);
      // One untimed recovery first (JIT warm-up), then the two reads alternately; medians.
      await timeRecovery(peer, { full_replay: 'latest' });
      const runs: Record<'auto' | 'server', { ms: number; peerMs: number }[]> = {
        auto: [],
        server: [],
      };
      for (let r = 0; r < (o.quick ? 1 : 3); r++)
        for (const c of r % 2 === 0 ? (['auto', 'server'] as const) : (['server', 'auto'] as const))
          runs[c].push(await timed({ catch_up: c }));
      const med = (xs: { ms: number; peerMs: number }[]) => ({
        ms: median(xs.map((x) => x.ms)),
        peerMs: median(xs.map((x) => x.peerMs)),
      });
      const history = med(runs.auto);
      const historyServer = med(runs.server);
      const historyMs = history.ms;
      const latestMs = await timeRecovery(peer, { full_replay: 'latest' });
      await timeRecovery(peer, { snapshot: { path } }); // builds the snapshot (not part of the figure)
      const delta = Math.max(1, Math.round(n / 100));
      for (let id = 1; id <= delta; id++)
        peer.register([modelRegisterEvent(PREFIX, id, 'bench.Model', blob(256, 2))]);
      const snapshotDeltaMs = await timeRecovery(peer, { snapshot: { path } });
      const row = {
        models: n,
        historyMs,
        historyPeerMs: history.peerMs,
        historyServerMs: historyServer.ms,
        historyServerPeerMs: historyServer.peerMs,
        latestMs,
        snapshotDeltaMs,
        delta,
        ratio: historyMs / snapshotDeltaMs,
      };
      rows.push(row);
      o.log(
        `  ${String(n).padStart(6)} models: full replay history ${historyMs.toFixed(0)} ms (timeseries; peer queries ${history.peerMs.toFixed(0)} ms) / ${historyServer.ms.toFixed(0)} ms (catch_up: server; peer queries ${historyServer.peerMs.toFixed(0)} ms), latest ${latestMs.toFixed(0)} ms; snapshot + ${delta} delta ${snapshotDeltaMs.toFixed(0)} ms  (history/snapshot ${row.ratio.toFixed(1)}×)`,
      );
    } finally {
      await peer.close();
    }
  }
  return rows;
}

// ---- 3. peak RSS -------------------------------------------------------------------------------

export interface RssRow {
  mode: string;
  maxRssMiB: number;
  ms: number;
}

function runChild(args: string[]): Promise<{ maxRssMiB: number; ms: number }> {
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script, '--child', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`child exited with ${code}`));
      else resolvePromise(JSON.parse(out.trim().split('\n').at(-1) ?? '{}'));
    });
  });
}

/**
 * This process's peak RSS. Linux's `VmHWM` (reset by exec); `getrusage`'s maxrss is not usable in
 * a child: Linux carries the parent's (the peer's, with every model in memory) across fork+exec.
 */
function peakRssKiB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m?.[1] !== undefined) return Number(m[1]);
  } catch {}
  return process.resourceUsage().maxRSS;
}

async function child(argv: string[]): Promise<void> {
  const get = (k: string) => argv[argv.indexOf(k) + 1] as string;
  const mode = get('--mode');
  const t0 = performance.now();
  if (mode !== 'idle') {
    const peer = { host: '127.0.0.1', port: Number(get('--port')) };
    const extra: Record<string, unknown> =
      mode === 'memory' ? {} : { snapshot: { path: get('--path') } };
    const b = create({ module: 'x', model_prefix: PREFIX, ...extra }, context(peer));
    await b.whenReady();
    const n = (await b.getModels()).length;
    if (n === 0) throw new Error('nothing recovered');
    // Keep the backend open while measuring: its state is what a running daemon holds.
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    await b.close();
  }
  const ms = performance.now() - t0;
  const maxRssMiB = peakRssKiB() / 1024;
  process.stdout.write(`${JSON.stringify({ maxRssMiB, ms })}\n`);
}

export async function runRss(o: Options): Promise<RssRow[]> {
  const n = o.quick ? 2000 : 10_000;
  const rows: RssRow[] = [];
  const peer = await startHatPeer({ flushDelayMs: 1000, engineEvents: false });
  const path = join(o.dir, 'rss.db');
  removeSnapshot(path);
  try {
    seed(peer, n, 64 * 1024, 3);
    const port = String(peer.port);
    for (const [mode, label] of [
      ['idle', 'idle child (node + modules, for scale)'],
      ['memory', `no snapshot: ${n} × 64 KiB in memory`],
      ['snapshot', `snapshot being built (${n} × 64 KiB written to it)`],
      ['snapshot', 'restart from that snapshot'],
    ] as const) {
      const r = await runChild(['--mode', mode, '--port', port, '--path', path]);
      rows.push({ mode: label, maxRssMiB: r.maxRssMiB, ms: r.ms });
      o.log(
        `  ${label.padEnd(52)} peak RSS ${r.maxRssMiB.toFixed(0).padStart(5)} MiB  (${r.ms.toFixed(0)} ms)`,
      );
    }
  } finally {
    await peer.close();
  }
  return rows;
}

// ---- 4. a noisy Hat ----------------------------------------------------------------------------

export interface NoisyRow {
  case: 'full replay' | 'catch-up';
  catchUp: 'server' | 'auto';
  via: string;
  ms: number;
  /** Of which the peer (same process) spent answering queries. */
  peerMs: number;
  bytes: number;
  received: number;
}

function sizeText(bytes: number): string {
  return bytes < 1048576
    ? `${(bytes / 1024).toFixed(1)} KiB`
    : `${(bytes / 1048576).toFixed(1)} MiB`;
}

export async function runNoisy(o: Options): Promise<NoisyRow[]> {
  const models = o.quick ? 2000 : 10_000;
  const noise = models * 20;
  const rounds = o.quick ? 1 : 3;
  const rows: NoisyRow[] = [];
  const peer = await startHatPeer({ flushDelayMs: 1000, engineEvents: false });
  const proxy = await startRecordingProxy(peer);
  const peerTime = timePeerQueries(peer);
  const base = join(o.dir, 'noisy.db');
  const work = join(o.dir, 'noisy-work.db');
  removeSnapshot(base);
  try {
    // 10k models in sessions of 500, among 200k unrelated events.
    const data = blob(256, 4);
    const step = models / 20;
    for (let r = 0; r < 20; r++) {
      registerNoise(peer, noise / 40);
      const batch: RegisterEvent[] = [];
      for (let id = 1 + r * step; id <= (r + 1) * step; id++)
        batch.push(modelRegisterEvent(PREFIX, id, 'bench.Model', data));
      peer.register(batch);
      registerNoise(peer, noise / 40);
    }
    const measure = async (
      which: NoisyRow['case'],
      catchUp: NoisyRow['catchUp'],
      extra: Record<string, unknown>,
    ): Promise<NoisyRow> => {
      const metrics = new MetricsRegistry();
      const bytes0 = proxy.receivedBytes;
      const peer0 = peerTime.ms;
      const t0 = performance.now();
      const b = create(
        { module: 'x', model_prefix: PREFIX, catch_up: catchUp, ...extra },
        context(proxy, metrics),
      );
      await b.whenReady();
      const ms = performance.now() - t0;
      const n = (await b.getModels()).length;
      await b.close();
      if (n !== models) throw new Error(`recovered ${n} models, expected ${models}`);
      const text = metrics.render();
      const byQuery: Record<string, number> = {};
      for (const m of text.matchAll(/event_recovery_received_events_total\{query="(\w+)"\} (\d+)/g))
        byQuery[m[1] as string] = Number(m[2]);
      const received = Object.values(byQuery).reduce((a, b) => a + b, 0);
      // Which query read the history: the one that brought most events (checks and probes: 1).
      const via = (byQuery.server ?? 0) > (byQuery.timeseries ?? 0) ? 'server' : 'timeseries';
      return {
        case: which,
        catchUp,
        via,
        ms,
        peerMs: peerTime.ms - peer0,
        bytes: proxy.receivedBytes - bytes0,
        received,
      };
    };
    const collect = new Map<string, NoisyRow[]>();
    const keep = (r: NoisyRow) => {
      const k = `${r.case}/${r.catchUp}`;
      collect.set(k, [...(collect.get(k) ?? []), r]);
    };
    // The snapshot both catch-ups start from: built by a full replay, then a delta while down.
    await timeRecovery(proxy, { snapshot: { path: base } });
    for (let id = 1; id <= models / 100; id++) {
      registerNoise(peer, noise / 10 / (models / 100));
      peer.register([modelRegisterEvent(PREFIX, id * 97, 'bench.Model', blob(256, 5))]);
    }
    for (let r = 0; r < rounds; r++) {
      const order: NoisyRow['catchUp'][] = r % 2 === 0 ? ['server', 'auto'] : ['auto', 'server'];
      for (const c of order) keep(await measure('full replay', c, {}));
      for (const c of order) {
        copySnapshot(base, work);
        keep(await measure('catch-up', c, { snapshot: { path: work } }));
      }
    }
    for (const which of ['full replay', 'catch-up'] as const) {
      const pick = (c: string) => {
        const rs = collect.get(`${which}/${c}`) ?? [];
        return {
          ...(rs[0] as NoisyRow),
          ms: median(rs.map((x) => x.ms)),
          peerMs: median(rs.map((x) => x.peerMs)),
        };
      };
      const server = pick('server');
      const auto = pick('auto');
      rows.push(server, auto);
      for (const r of [server, auto])
        o.log(
          `  ${which.padEnd(11)} catch_up ${r.catchUp.padEnd(6)} ${r.ms.toFixed(0).padStart(6)} ms (peer queries ${r.peerMs.toFixed(0).padStart(5)} ms, rest ${(r.ms - r.peerMs).toFixed(0).padStart(5)} ms)  ${sizeText(r.bytes).padStart(9)}  ${String(r.received).padStart(7)} events received`,
        );
      const rest = (r: NoisyRow) => r.ms - r.peerMs;
      o.log(
        `  ${which.padEnd(11)} server/auto: time ${(server.ms / auto.ms).toFixed(1)}× (rest ${(rest(server) / rest(auto)).toFixed(1)}×), bytes ${(server.bytes / auto.bytes).toFixed(1)}×, events ${(server.received / auto.received).toFixed(0)}×`,
      );
    }
  } finally {
    await proxy.close();
    await peer.close();
    for (const p of [base, work]) removeSnapshot(p);
  }
  return rows;
}

// ---- main --------------------------------------------------------------------------------------

export async function run(o: Options) {
  mkdirSync(o.dir, { recursive: true });
  const out: { writes?: WriteRow[]; restart?: RestartRow[]; rss?: RssRow[]; noisy?: NoisyRow[] } =
    {};
  if (o.only === null || o.only === 'writes') {
    o.log(
      'event backend writes (ours = batched pipeline; baseline = one register request per write):',
    );
    out.writes = await runWrites(o);
  }
  if (o.only === null || o.only === 'restart') {
    o.log('event backend restart time (create → ready), 256-byte models:');
    out.restart = await runRestart(o);
  }
  if (o.only === null || o.only === 'rss') {
    o.log('event backend peak RSS of a recovering child process:');
    out.rss = await runRss(o);
  }
  if (o.only === null || o.only === 'noisy') {
    o.log(
      'event backend restart from a noisy Hat (models among 20× as many unrelated events), catch_up server vs auto (timeseries):',
    );
    out.noisy = await runNoisy(o);
  }
  return out;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    only: null,
    dir: resolve('.bench-tmp', 'event'),
    log: (l) => process.stdout.write(`${l}\n`),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.only = String(argv[++i]);
    else if (a === '--dir') o.dir = resolve(String(argv[++i]));
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    child(argv.slice(1)).catch((err: unknown) => {
      process.stderr.write(`child failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    });
  } else {
    const o = parseArgs(argv);
    const t0 = performance.now();
    run(o).then(
      () => {
        o.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        rmSync(o.dir, { recursive: true, force: true });
      },
      (err: unknown) => {
        process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exitCode = 1;
      },
    );
  }
}
