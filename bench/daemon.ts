/**
 * Daemon benchmark: `node dist/bench/daemon.js [--quick]` (after `npm run build`).
 *
 * - lifecycle: the real daemon (`aimm-store serve`, sqlite backend, Juggler and HTTP on port 0) as
 *   a child process — time from spawn to its `ready` log line, with an empty file and with 10 000
 *   models of 1 KiB, and time from SIGTERM to exit; against the baseline of a bare Node process
 *   that starts a `node:http` server and says so (the floor of any Node daemon), spawned
 *   alternately with ours;
 * - HTTP: `GET /models/{id}` requests/s through the HTTP control (over an in-memory backend, so it
 *   measures the control, not storage) with 16 keep-alive connections, at 1 KiB, 64 KiB and
 *   1 MiB, against the baseline of a bare `node:http` server answering the same bytes from a Map,
 *   in alternating rounds in the same process.
 *
 * Prints each figure and its ratio to the baseline (medians over rounds).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { openSqliteBackend } from '../src/backends/sqlite.js';
import { MetricsRegistry } from '../src/common/metrics.js';
import { create as createHttpControl } from '../src/controls/http.js';
import type { Control } from '../src/controls/types.js';
import { MemoryBackend } from '../test/support/memory-backend.js';
import { DAEMON_MAIN } from './child.js';
import { median } from './stats.js';

const MAIN = DAEMON_MAIN;
const quick = process.argv.includes('--quick');

const ms = (x: number) => `${x.toFixed(1)} ms`;

// -- lifecycle ------------------------------------------------------------------------------

interface Spawned {
  child: ChildProcess;
  /** Resolves with the time (performance.now()) at which a stdout line matched. */
  line(pred: (line: string) => boolean): Promise<number>;
  exited: Promise<number>;
}

function spawnNode(args: string[], cwd: string): Spawned {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  let partial = '';
  const waiters: { pred: (l: string) => boolean; resolve: (t: number) => void }[] = [];
  child.stdout?.on('data', (b: Buffer) => {
    const now = performance.now();
    partial += b.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i] as (typeof waiters)[number];
        if (w.pred(l)) {
          waiters.splice(i, 1);
          w.resolve(now);
        }
      }
    }
  });
  const exited = new Promise<number>((resolve) =>
    child.on('exit', () => resolve(performance.now())),
  );
  return {
    child,
    exited,
    line: (pred) =>
      new Promise((resolve, reject) => {
        waiters.push({ pred, resolve });
        void exited.then(() =>
          reject(new Error(`process exited before the line: ${args.join(' ')}`)),
        );
      }),
  };
}

const BASELINE_SERVER = [
  '-e',
  "require('node:http').createServer((q, s) => s.end()).listen(0, '127.0.0.1', () => console.log('ready'));",
];

/** One start and stop: [start-to-ready, SIGTERM-to-exit] in ms. */
async function startStop(args: string[], cwd: string, isReady: (l: string) => boolean) {
  const t0 = performance.now();
  const p = spawnNode(args, cwd);
  const ready = await p.line(isReady);
  const t1 = performance.now();
  p.child.kill('SIGTERM');
  const exit = await p.exited;
  return [ready - t0, exit - t1] as const;
}

async function seedModels(path: string, count: number): Promise<void> {
  const backend = await openSqliteBackend({ path });
  const blob = new Uint8Array(1024).fill(5);
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) pending.push(backend.createModel('bench.Model', blob));
  await Promise.all(pending);
  await backend.close();
}

async function lifecycle(): Promise<void> {
  const rounds = quick ? 3 : 9;
  const dir = mkdtempSync(join(tmpdir(), 'aimm-bench-daemon-'));
  try {
    for (const models of [0, 10_000]) {
      const db = join(dir, `models-${models}.db`);
      if (models > 0) await seedModels(db, models);
      const conf = join(dir, `conf-${models}.json`);
      writeFileSync(
        conf,
        JSON.stringify({
          name: 'bench',
          backend: { module: 'aimm-store/backends/sqlite', path: db },
          control: [
            { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
            { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
          ],
          log: { level: 'info' },
        }),
      );
      const ours = { ready: [] as number[], exit: [] as number[] };
      const base = { ready: [] as number[], exit: [] as number[] };
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? ['ours', 'base'] : ['base', 'ours'];
        for (const which of order) {
          if (which === 'ours') {
            const [ready, exit] = await startStop(['--', MAIN, 'serve', '--conf', conf], dir, (l) =>
              l.includes('"msg":"ready"'),
            );
            ours.ready.push(ready);
            ours.exit.push(exit);
          } else {
            const [ready, exit] = await startStop(BASELINE_SERVER, dir, (l) => l === 'ready');
            base.ready.push(ready);
            base.exit.push(exit);
          }
        }
      }
      const [or, br, oe, be] = [ours.ready, base.ready, ours.exit, base.exit].map(median) as [
        number,
        number,
        number,
        number,
      ];
      console.log(
        `start to ready, ${models} models: ours ${ms(or)}, bare node:http ${ms(br)}, ` +
          `ours − bare ${ms(or - br)}, ratio ${(or / br).toFixed(2)}`,
      );
      console.log(
        `SIGTERM to exit, ${models} models: ours ${ms(oe)}, bare node:http ${ms(be)}, ` +
          `ratio ${(oe / be).toFixed(2)}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// -- HTTP -----------------------------------------------------------------------------------

const SIZES: [string, number][] = [
  ['1 KiB', 1024],
  ['64 KiB', 64 * 1024],
  ['1 MiB', 1024 * 1024],
];
const CONCURRENCY = 16;

function listenBare(blobs: Map<number, Uint8Array>): Promise<Server> {
  const server = createServer((req, res) => {
    const id = Number(req.url?.slice('/models/'.length));
    const blob = blobs.get(id);
    if (blob === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': blob.length,
    });
    res.end(blob);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** `n` GETs of `path` over `CONCURRENCY` keep-alive connections; requests per second. */
async function load(port: number, path: string, n: number, size: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
        });
        res.on('end', () =>
          res.statusCode === 200 && got === size
            ? resolve()
            : reject(new Error(`GET ${path}: ${res.statusCode}, ${got} bytes`)),
        );
      }).on('error', reject);
    });
  const t = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        next++;
        await one();
      }
    }),
  );
  const perSec = n / ((performance.now() - t) / 1000);
  agent.destroy();
  return perSec;
}

async function http(): Promise<void> {
  const backend = new MemoryBackend();
  const control: Control = await createHttpControl(
    { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
    {
      name: 'bench',
      logger: pino({ level: 'silent' }),
      metrics: new MetricsRegistry(),
      backend,
      status: () => ({ ready: true, backend: backend.status() }),
    },
  );
  const blobs = new Map<number, Uint8Array>();
  const bare = await listenBare(blobs);
  const barePort = (bare.address() as AddressInfo).port;
  const rounds = quick ? 3 : 7;
  try {
    for (const [label, size] of SIZES) {
      const blob = new Uint8Array(size).fill(9);
      const { meta } = await backend.createModel('bench.Model', blob);
      blobs.set(meta.instanceId, blob);
      const path = `/models/${meta.instanceId}`;
      const n = Math.round((size <= 1024 ? 4000 : size <= 65536 ? 2000 : 200) / (quick ? 4 : 1));
      await load(control.address.port, path, Math.ceil(n / 4), size); // warm-up
      await load(barePort, path, Math.ceil(n / 4), size);
      const ours: number[] = [];
      const base: number[] = [];
      const ratios: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const first = r % 2 === 0;
        const a = first ? await load(control.address.port, path, n, size) : 0;
        const b = await load(barePort, path, n, size);
        const o = first ? a : await load(control.address.port, path, n, size);
        ours.push(o);
        base.push(b);
        ratios.push(o / b);
      }
      console.log(
        `GET /models/{id} ${label}, ${CONCURRENCY} connections: ours ${Math.round(median(ours))}/s, ` +
          `bare node:http ${Math.round(median(base))}/s, ratio ${median(ratios).toFixed(2)} ` +
          `(range ${Math.min(...ratios).toFixed(2)} – ${Math.max(...ratios).toFixed(2)})`,
      );
    }
  } finally {
    await control.close();
    await new Promise((resolve) => bare.close(resolve));
  }
}

await http();
await lifecycle();
