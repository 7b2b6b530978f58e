/**
 * sqlite backend benchmark: `node dist/bench/sqlite.js [--quick] [--dir DIR] [--sync full|normal]`.
 *
 * Writes/s for 1 KiB, 64 KiB and 1 MiB instances at concurrency 1 and 64, for our backend and for
 * raw better-sqlite3 inserts of the same blobs into AIMM's table with the same pragmas (WAL,
 * exclusive locking, same synchronous level), in the same process, each on a fresh file:
 * - `raw`: one autocommit INSERT per write (what AIMM does; concurrency does not apply to it);
 * - `raw-batch`: the same INSERTs, 64 per transaction (an upper bound for group commit).
 * The three run interleaved in rounds on their own files; the ratio ours/raw is the median over
 * rounds (the disk of a shared machine is noisy). Then read latency (getModel, getModels) against
 * a raw SELECT.
 * Files go to DIR (default `.bench-tmp/sqlite` under the working directory, i.e. the real disk).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { openSqliteBackend, type SqliteBackend } from '../src/backends/sqlite.js';
import { median, percentile } from './stats.js';

export interface BenchOptions {
  quick: boolean;
  dir: string;
  synchronous: 'full' | 'normal';
  log?: (line: string) => void;
}

export interface WriteResultRow {
  size: string;
  concurrency: number;
  writes: number;
  rounds: number;
  rawPerSec: number;
  rawBatchPerSec: number;
  oursPerSec: number;
  ratio: number;
  ratioToBatch: number;
}

export interface ReadResultRow {
  size: string;
  rawGetP50Us: number;
  oursGetP50Us: number;
  oursGetP99Us: number;
  ratio: number;
  models: number;
  oursListMs: number;
}

const SIZES: [string, number][] = [
  ['1 KiB', 1024],
  ['64 KiB', 64 * 1024],
  ['1 MiB', 1024 * 1024],
];
const CONCURRENCY = [1, 64];
const AIMM_DDL = `CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    instance BLOB
)`;

function blobsOf(size: number, n = 16): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const b = Buffer.alloc(size);
    for (let j = 0; j < size; j += 4) b.writeUInt32LE((Math.imul(j + 1, 2654435761) ^ i) >>> 0, j);
    return b;
  });
}

/** How many writes per cell: enough bytes to be stable, few enough for a run of minutes. */
function writesFor(size: number, quick: boolean): number {
  const full = size <= 1024 ? 4000 : size <= 64 * 1024 ? 1200 : 256;
  return quick ? Math.max(64, Math.round(full / 10)) : full;
}

let fileNo = 0;
function freshPath(dir: string): string {
  const p = join(dir, `bench-${process.pid}-${fileNo++}.db`);
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(p + suffix, { force: true });
  return p;
}

function removeDb(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}

function rawDb(path: string, synchronous: string): Database.Database {
  const db = new Database(path);
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
  db.exec(AIMM_DDL);
  return db;
}

/** One side of a write measurement: runs `count` writes, returns the time they took (ms). */
interface Writer {
  run(from: number, count: number): Promise<number>;
  close(): Promise<void>;
}

/** Raw better-sqlite3: autocommit INSERTs (batch = 1) or `batch` INSERTs per transaction. */
function rawWriter(path: string, o: BenchOptions, blobs: Buffer[], batch: number): Writer {
  const db = rawDb(path, o.synchronous);
  const insert = db.prepare('INSERT INTO models (type, instance) VALUES (?, ?)');
  const many = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) insert.run('bench.Model', blobs[i % blobs.length]);
  });
  return {
    run: async (from, count) => {
      const t0 = performance.now();
      for (let i = from; i < from + count; i += batch) {
        if (batch === 1) insert.run('bench.Model', blobs[i % blobs.length]);
        else many(i, Math.min(from + count, i + batch));
      }
      return performance.now() - t0;
    },
    close: async () => {
      db.close();
      removeDb(path);
    },
  };
}

/** Our backend, `concurrency` writers awaiting their acknowledgements. */
async function ourWriter(
  path: string,
  o: BenchOptions,
  blobs: Buffer[],
  concurrency: number,
): Promise<Writer> {
  const backend = await openSqliteBackend({ path, synchronous: o.synchronous });
  return {
    run: async (from, count) => {
      let next = from;
      const end = from + count;
      const worker = async () => {
        while (next < end) {
          const k = next++;
          await backend.createModel('bench.Model', blobs[k % blobs.length] as Buffer);
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: concurrency }, worker));
      return performance.now() - t0;
    },
    close: async () => {
      await backend.close();
      removeDb(path);
    },
  };
}

/**
 * Runs the writers interleaved in rounds (rotating their order) so that all of them see the same
 * disk conditions. Returns, per writer, writes/s over all rounds and the median over rounds of
 * (time of writer 0 / time of this writer): the ratio to writer 0, robust against a noisy disk.
 */
async function interleaved(
  writers: Writer[],
  n: number,
  rounds: number,
): Promise<{ perSec: number[]; ratioTo0: number[] }> {
  const times: number[][] = writers.map(() => []);
  const chunk = Math.ceil(n / rounds);
  for (let r = 0, from = 0; from < n; r++, from += chunk) {
    const count = Math.min(chunk, n - from);
    for (let j = 0; j < writers.length; j++) {
      const w = (r + j) % writers.length;
      (times[w] as number[]).push(await (writers[w] as Writer).run(from, count));
    }
  }
  for (const w of writers) await w.close();
  const base = times[0] as number[];
  return {
    perSec: times.map((ts) => (n / ts.reduce((a, b) => a + b, 0)) * 1000),
    ratioTo0: times.map((ts) => median(ts.map((t, i) => (base[i] as number) / t))),
  };
}

export async function runWrites(o: BenchOptions): Promise<WriteResultRow[]> {
  const rows: WriteResultRow[] = [];
  for (const [label, size] of SIZES) {
    const blobs = blobsOf(size);
    const n = writesFor(size, o.quick);
    for (const c of CONCURRENCY) {
      // Rounds of at least 2 × concurrency writes, so that concurrency is real in every round.
      const rounds = Math.max(2, Math.min(o.quick ? 6 : 30, Math.floor(n / (2 * c))));
      const { perSec, ratioTo0 } = await interleaved(
        [
          rawWriter(freshPath(o.dir), o, blobs, 1),
          rawWriter(freshPath(o.dir), o, blobs, 64),
          await ourWriter(freshPath(o.dir), o, blobs, c),
        ],
        n,
        rounds,
      );
      const [raw, rawBatch, ours] = perSec as [number, number, number];
      const [, rBatch, rOurs] = ratioTo0 as [number, number, number];
      const row: WriteResultRow = {
        size: label,
        concurrency: c,
        writes: n,
        rounds,
        rawPerSec: raw,
        rawBatchPerSec: rawBatch,
        oursPerSec: ours,
        ratio: rOurs,
        ratioToBatch: rOurs / rBatch,
      };
      rows.push(row);
      o.log?.(
        `${label.padStart(6)}  c=${String(c).padStart(2)}  n=${String(n).padStart(4)}  ` +
          `raw ${fmt(row.rawPerSec)}/s  raw-batch64 ${fmt(row.rawBatchPerSec)}/s  ` +
          `ours ${fmt(row.oursPerSec)}/s  ours/raw ${row.ratio.toFixed(2)}  ` +
          `ours/raw-batch ${row.ratioToBatch.toFixed(2)}  (${rounds} rounds)`,
      );
    }
  }
  return rows;
}

/**
 * Read latency: our getModel against a raw SELECT of the same row, on two files holding the same
 * blobs (ours written through the backend, raw by plain INSERTs), interleaved in chunks; and the
 * median time of getModels (metadata of every model).
 */
export async function runReads(o: BenchOptions): Promise<ReadResultRow[]> {
  const rows: ReadResultRow[] = [];
  const reads = o.quick ? 400 : 4000;
  for (const [label, size] of [SIZES[0], SIZES[2]] as [string, number][]) {
    const blobs = blobsOf(size);
    const count = size >= 1024 * 1024 ? 100 : o.quick ? 200 : 1000;
    const oursPath = freshPath(o.dir);
    const backend: SqliteBackend = await openSqliteBackend({
      path: oursPath,
      synchronous: o.synchronous,
    });
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        backend.createModel('bench.Model', blobs[i % blobs.length] as Buffer),
      ),
    );
    const rawPath = freshPath(o.dir);
    const db = rawDb(rawPath, o.synchronous);
    const insert = db.prepare('INSERT INTO models (type, instance) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < count; i++) insert.run('bench.Model', blobs[i % blobs.length]);
    })();
    const get = db.prepare('SELECT type, instance FROM models WHERE id = ?');

    const ids = Array.from({ length: reads }, (_, i) => 1 + ((i * 7919) % count));
    const ours: number[] = [];
    const raw: number[] = [];
    const chunk = 50;
    for (let from = 0; from < ids.length; from += chunk) {
      for (const id of ids.slice(from, from + chunk)) {
        const t0 = performance.now();
        await backend.getModel(id);
        ours.push((performance.now() - t0) * 1000);
      }
      for (const id of ids.slice(from, from + chunk)) {
        const t0 = performance.now();
        get.get(id);
        raw.push((performance.now() - t0) * 1000);
      }
    }
    const lists: number[] = [];
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      await backend.getModels();
      lists.push(performance.now() - t0);
    }
    await backend.close();
    db.close();
    removeDb(oursPath);
    removeDb(rawPath);
    const row: ReadResultRow = {
      size: label,
      rawGetP50Us: median(raw),
      oursGetP50Us: median(ours),
      oursGetP99Us: percentile(ours, 99),
      ratio: median(raw) / median(ours),
      models: count,
      oursListMs: median(lists),
    };
    rows.push(row);
    o.log?.(
      `${label.padStart(6)}  getModel p50 ${row.oursGetP50Us.toFixed(1)} µs (p99 ` +
        `${row.oursGetP99Us.toFixed(1)})  raw SELECT p50 ${row.rawGetP50Us.toFixed(1)} µs  ` +
        `ours/raw time ${(1 / row.ratio).toFixed(2)}  getModels of ${count}: ` +
        `${row.oursListMs.toFixed(2)} ms (median)`,
    );
  }
  return rows;
}

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0).padStart(6) : n.toFixed(1).padStart(6);
}

export async function run(o: BenchOptions): Promise<{
  writes: WriteResultRow[];
  reads: ReadResultRow[];
}> {
  mkdirSync(o.dir, { recursive: true });
  const log = o.log ?? (() => {});
  log(
    `sqlite backend vs raw better-sqlite3 (same pragmas: WAL, exclusive, synchronous=${o.synchronous}); dir ${o.dir}${o.quick ? '; --quick' : ''}`,
  );
  log('writes:');
  const writes = await runWrites(o);
  log('reads:');
  const reads = await runReads(o);
  return { writes, reads };
}

function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    quick: false,
    dir: resolve('.bench-tmp', 'sqlite'),
    synchronous: 'full',
    log: (l) => process.stdout.write(`${l}\n`),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--dir') o.dir = resolve(String(argv[++i]));
    else if (a === '--sync') {
      const v = argv[++i];
      if (v !== 'full' && v !== 'normal') throw new Error('--sync takes full or normal');
      o.synchronous = v;
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const o = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  run(o).then(
    () => {
      o.log?.(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      rmSync(o.dir, { recursive: true, force: true });
    },
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
