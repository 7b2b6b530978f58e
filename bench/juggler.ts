/**
 * Juggler control benchmark: `node dist/bench/juggler.js [--quick]`.
 *
 * Everything runs in one process, against an in-memory backend, so the numbers show the cost of
 * the control and the protocol, not of storage:
 * - writes: `JugglerClient.put` (0.7 framing, meta_only replies) per second for 1 KiB, 64 KiB and
 *   1 MiB models at concurrency 1 and 16, against the baseline of calling the same backend's
 *   `createModel` directly;
 * - reads: `JugglerClient.get` latency (p50) against `getModel` directly;
 * - fan-out: time from one write until N watching clients all have its `model_change`
 *   notification (autoflush_delay 0), against the baseline of a plain `ws` server sending one
 *   pre-encoded text to N plain `ws` clients;
 * - JSON: Python-format serialization (`pyDumps`) of a 1000-model state and of a 1 MiB response,
 *   against `JSON.stringify`;
 * - push: CPU per state push (a flush: 64 new models, one session on the last step) with 1 000,
 *   60 000 and 1 000 000 models stored (100 000 with `--quick`), against the baseline of the push
 *   before versions (the whole `models` object built per push, the diff over the changed keys).
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { Subject } from 'rxjs';
import WebSocket, { WebSocketServer } from 'ws';
import type { Backend, ModelChange, ModelMeta } from '../src/backend/types.js';
import { JugglerClient } from '../src/client/index.js';
import { MetricsRegistry } from '../src/common/metrics.js';
import { modelsDeltaText } from '../src/controls/juggler/fast-texts.js';
import { type ModelEntry, ModelView } from '../src/controls/juggler/model-view.js';
import { pyDumps } from '../src/controls/juggler/pyjson.js';
import { type PushedState, StateTexts } from '../src/controls/juggler/state-texts.js';
import { create } from '../src/controls/juggler.js';
import { modelJson } from '../src/controls/model-json.js';
import type { Control } from '../src/controls/types.js';
import { MemoryBackend } from '../test/support/memory-backend.js';
import { median, percentile } from './stats.js';

interface Row {
  [key: string]: string | number;
}

const SIZES: [string, number][] = [
  ['1 KiB', 1024],
  ['64 KiB', 64 * 1024],
  ['1 MiB', 1024 * 1024],
];

async function host(
  flushDelay: number,
): Promise<{ control: Control; backend: MemoryBackend; url: string }> {
  const backend = new MemoryBackend();
  const control = await create(
    {
      module: 'aimm-store/controls/juggler',
      server: { host: '127.0.0.1', port: 0, autoflush_delay: flushDelay },
      framing_wait: 0.05,
      max_connections: 10_000,
    },
    {
      name: 'bench',
      logger: pino({ level: 'silent' }),
      metrics: new MetricsRegistry(),
      backend,
      status: () => ({ ready: true, backend: backend.status() }),
    },
  );
  return { control, backend, url: `ws://127.0.0.1:${control.address.port}/` };
}

async function pool(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

async function writes(quick: boolean, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [label, size] of SIZES) {
    for (const concurrency of [1, 16]) {
      const n = Math.max(
        32,
        Math.round((size <= 1024 ? 3000 : size <= 65536 ? 800 : 120) / (quick ? 8 : 1)),
      );
      const blob = new Uint8Array(size).fill(7);
      const direct = new MemoryBackend();
      let t = performance.now();
      await pool(n, concurrency, () => direct.createModel('bench', blob));
      const basePerSec = n / ((performance.now() - t) / 1000);
      await direct.close();
      const h = await host(0.2);
      const clients = await Promise.all(
        Array.from({ length: Math.min(concurrency, 4) }, () => JugglerClient.connect(h.url)),
      );
      t = performance.now();
      await pool(n, concurrency, (i) =>
        (clients[i % clients.length] as JugglerClient).put('bench', blob),
      );
      const oursPerSec = n / ((performance.now() - t) / 1000);
      await Promise.all(clients.map((c) => c.close()));
      await h.control.close();
      const row = {
        size: label,
        concurrency,
        writes: n,
        directPerSec: Math.round(basePerSec),
        jugglerPerSec: Math.round(oursPerSec),
        ratio: Number((oursPerSec / basePerSec).toFixed(4)),
      };
      log(`writes ${JSON.stringify(row)}`);
      rows.push(row);
    }
  }
  return rows;
}

async function reads(quick: boolean, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [label, size] of SIZES) {
    const n = quick ? 50 : 300;
    const h = await host(0.2);
    const { meta } = await h.backend.createModel('bench', new Uint8Array(size).fill(3));
    const base: number[] = [];
    const ours: number[] = [];
    const client = await JugglerClient.connect(h.url);
    for (let i = 0; i < n; i++) {
      let t = performance.now();
      await h.backend.getModel(meta.instanceId);
      base.push(performance.now() - t);
      t = performance.now();
      await client.get(meta.instanceId);
      ours.push(performance.now() - t);
    }
    await client.close();
    await h.control.close();
    const row = {
      size: label,
      directP50Us: Math.round(percentile(base, 50) * 1000),
      jugglerP50Us: Math.round(percentile(ours, 50) * 1000),
      jugglerP99Us: Math.round(percentile(ours, 99) * 1000),
      ratio: Number((percentile(ours, 50) / Math.max(percentile(base, 50), 1e-6)).toFixed(1)),
    };
    log(`reads ${JSON.stringify(row)}`);
    rows.push(row);
  }
  return rows;
}

/** Baseline: a plain ws server sending one text to N plain clients; ms until all have it. */
async function rawFanout(n: number, rounds: number): Promise<number[]> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as { port: number }).port;
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws) => sockets.push(ws));
  let pending = 0;
  let done: () => void = () => {};
  const clients = await Promise.all(
    Array.from({ length: n }, async () => {
      const c = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
      c.on('message', () => {
        if (--pending === 0) done();
      });
      await new Promise((resolve) => c.once('open', resolve));
      return c;
    }),
  );
  while (sockets.length < n) await new Promise((r) => setTimeout(r, 5));
  const text = `0${pyDumps({ type: 'notify', name: 'model_change', data: { change: 'created', instance_id: 1, model_type: 'bench', revision: 1, origin: 'local' } })}`;
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    pending = n;
    const t = performance.now();
    for (const s of sockets) s.send(text);
    await all;
    times.push(performance.now() - t);
  }
  for (const c of clients) c.close();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  return times;
}

async function oursFanout(n: number, rounds: number): Promise<number[]> {
  const h = await host(0);
  const watchers = await Promise.all(
    Array.from({ length: n }, () => JugglerClient.connect(h.url, { sync: true })),
  );
  let pending = 0;
  let done: () => void = () => {};
  const subs = watchers.map((w) =>
    w.watch().subscribe(() => {
      if (--pending === 0) done();
    }),
  );
  const times: number[] = [];
  const blob = new Uint8Array(1024);
  for (let r = 0; r < rounds; r++) {
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    pending = n;
    const t = performance.now();
    await h.backend.createModel('bench', blob);
    await all;
    times.push(performance.now() - t);
  }
  for (const s of subs) s.unsubscribe();
  await Promise.all(watchers.map((w) => w.close()));
  await h.control.close();
  return times;
}

async function fanout(quick: boolean, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of quick ? [1, 50] : [1, 100, 500]) {
    const rounds = quick ? 10 : 30;
    const raw = await rawFanout(n, rounds);
    const ours = await oursFanout(n, rounds);
    const row = {
      watchers: n,
      rawP50Ms: Number(percentile(raw, 50).toFixed(2)),
      jugglerP50Ms: Number(percentile(ours, 50).toFixed(2)),
      jugglerP99Ms: Number(percentile(ours, 99).toFixed(2)),
      ratio: Number((percentile(ours, 50) / Math.max(percentile(raw, 50), 1e-3)).toFixed(1)),
    };
    log(`fanout ${JSON.stringify(row)}`);
    rows.push(row);
  }
  return rows;
}

function json(log: (s: string) => void): Row[] {
  const meta = (i: number) => ({
    instanceId: i,
    modelType: 'plugins.sklearn.SVC',
    revision: 3,
    size: 48213,
    sha256: 'a'.repeat(64),
    updated: '2026-11-27T12:00:00.000Z',
  });
  const models: Record<string, unknown> = {};
  for (let i = 1; i <= 1000; i++) models[String(i)] = modelJson(meta(i));
  const cases: [string, unknown][] = [
    [
      'state of 1000 models',
      { type: 'state', diff: [{ op: 'replace', path: '', value: { models, actions: {} } }] },
    ],
    [
      '1 MiB instance response',
      {
        type: 'response',
        id: 1,
        data: {
          instance_id: 1,
          model_type: 'x',
          instance: Buffer.alloc(1 << 20, 1).toString('base64'),
        },
        success: true,
      },
    ],
  ];
  const rows: Row[] = [];
  for (const [what, value] of cases) {
    const time = (fn: () => string) => {
      const n = 50;
      fn();
      const t = performance.now();
      for (let i = 0; i < n; i++) fn();
      return (performance.now() - t) / n;
    };
    const base = time(() => JSON.stringify(value));
    const ours = time(() => pyDumps(value));
    const row = {
      what,
      jsonStringifyMs: Number(base.toFixed(3)),
      pyDumpsMs: Number(ours.toFixed(3)),
      ratio: Number((ours / base).toFixed(2)),
    };
    log(`json ${JSON.stringify(row)}`);
    rows.push(row);
  }
  return rows;
}

/** Pushes of 64 new models each: ours (the view's versions) against a whole-state push. */
async function push(quick: boolean, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const meta = (id: number): ModelMeta => ({
    instanceId: id,
    modelType: 'bench.Model',
    revision: 1,
    size: 1024,
    sha256: 'ab'.repeat(32),
    updated: '2026-12-06T00:00:00.000Z',
  });
  const PER_PUSH = 64;
  const PUSHES = 50;
  for (const n of quick ? [1_000, 100_000] : [1_000, 60_000, 1_000_000]) {
    const changes = new Subject<ModelChange>();
    const stored = Array.from({ length: n }, (_, i) => meta(i + 1));
    const backend = { changes$: changes, getModels: async () => stored } as unknown as Backend;
    const view = new ModelView(backend, false, pino({ level: 'silent' }), {
      change: () => {},
      dirty: () => {},
    });
    await view.start();
    let sent: PushedState = { version: view.snapshot(), redundancy: undefined };
    // The baseline keeps its own entries, as the view did before versions: a Map by id, and the
    // whole models object of the last push.
    const entries = new Map<number, ModelEntry>(stored.map((m) => [m.instanceId, modelJson(m)]));
    let whole: Record<string, ModelEntry> = {};
    for (const [id, e] of entries) whole[id] = e;
    let next = n;
    const ours = (): void => {
      for (let i = 0; i < PER_PUSH; i++) {
        const m = meta(++next);
        changes.next({
          change: 'created',
          instanceId: m.instanceId,
          modelType: m.modelType,
          revision: 1,
          origin: 'local',
          meta: m,
        });
      }
      const to: PushedState = { version: view.snapshot(), redundancy: undefined };
      if (new StateTexts(view).get(sent, to) === null) throw new Error('no state text');
      sent = to;
    };
    const baseline = (): void => {
      const keys: string[] = [];
      for (let i = 0; i < PER_PUSH; i++) {
        const m = meta(++next);
        entries.set(m.instanceId, modelJson(m));
        keys.push(String(m.instanceId));
      }
      const models: Record<string, ModelEntry> = {};
      for (const [id, e] of entries) models[id] = e;
      if (modelsDeltaText({ from: whole, to: models, keys }) === null) throw new Error('no text');
      whole = models;
    };
    const cpuPerPush = (fn: () => void): number => {
      const t = process.cpuUsage();
      for (let i = 0; i < PUSHES; i++) fn();
      const u = process.cpuUsage(t);
      return (u.user + u.system) / PUSHES / 1000;
    };
    ours();
    baseline();
    const o: number[] = [];
    const b: number[] = [];
    for (let round = 0; round < 3; round++) {
      o.push(cpuPerPush(ours));
      b.push(cpuPerPush(baseline));
    }
    const row = {
      models: n,
      wholeStatePushMs: Number(median(b).toFixed(3)),
      oursPushMs: Number(median(o).toFixed(3)),
      ratio: Number((median(o) / median(b)).toFixed(3)),
    };
    log(`push ${JSON.stringify(row)}`);
    rows.push(row);
    view.close();
  }
  return rows;
}

export async function runJugglerBench(options: { quick: boolean; log?: (s: string) => void }) {
  const log = options.log ?? ((s: string) => process.stdout.write(`${s}\n`));
  return {
    writes: await writes(options.quick, log),
    reads: await reads(options.quick, log),
    fanout: await fanout(options.quick, log),
    json: json(log),
    push: await push(options.quick, log),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runJugglerBench({ quick: process.argv.includes('--quick') }).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
