/**
 * SQLite page size for large models: `node dist/bench/page-size.js [--rounds N] [--dir DIR]
 * [--sizes 1k,1m,64m] [--pages 4096,16384,65536]` (after `npm run build`).
 *
 * Times `createModel` of 1 KiB (200 per measurement), 1 MiB (16) and 64 MiB (2 per measurement) models through
 * the sqlite backend (its defaults: WAL, exclusive lock, `synchronous: full`) on a fresh file per
 * page size, interleaved: each round measures every page size once per model size, in an order
 * rotated from round to round. Prints the median and range of ms per write. Start the bench with
 * `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` in its environment to measure with huge pages.
 * Files go to DIR (default `.bench-tmp/page-size` under the working directory, the real disk).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openSqliteBackend } from '../src/backends/sqlite.js';
import { median } from './stats.js';

const argv = process.argv.slice(2);
function flagValue(flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}
const ROUNDS = Number(flagValue('--rounds') ?? 5);
if (!(Number.isInteger(ROUNDS) && ROUNDS > 0)) throw new Error('--rounds takes a positive integer');
const DIR = resolve(flagValue('--dir') ?? join('.bench-tmp', 'page-size'));
const PAGES = (flagValue('--pages') ?? '4096,16384,65536').split(',').map(Number);
const MiB = 1024 * 1024;
const ALL = [
  { key: '1k', label: '1 KiB', bytes: 1024, count: 200 },
  { key: '1m', label: '1 MiB', bytes: MiB, count: 16 },
  { key: '64m', label: '64 MiB', bytes: 64 * MiB, count: 2 },
];
const wanted = flagValue('--sizes')?.split(',');
const SIZES = ALL.filter((s) => wanted === undefined || wanted.includes(s.key));

/** ms per write of `count` models of `body` into a fresh file with `pageSize`. */
async function measure(pageSize: number, body: Buffer, count: number): Promise<number> {
  const path = join(DIR, `p${pageSize}.db`);
  rmSync(path, { force: true });
  const backend = await openSqliteBackend({ path, page_size: pageSize });
  try {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) await backend.createModel('bench.Model', body);
    return (performance.now() - t0) / count;
  } finally {
    await backend.close();
    rmSync(path, { force: true });
  }
}

mkdirSync(DIR, { recursive: true });
const ms = SIZES.map(() => PAGES.map((): number[] => []));
for (let round = 0; round < ROUNDS; round++) {
  for (const [si, size] of SIZES.entries()) {
    const body = randomBytes(size.bytes);
    for (let k = 0; k < PAGES.length; k++) {
      const pi = (k + round) % PAGES.length;
      ms[si]?.[pi]?.push(await measure(PAGES[pi] as number, body, size.count));
    }
  }
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}
const huge = (process.env.GLIBC_TUNABLES ?? '').includes('hugetlb=1');
console.log(
  `createModel ms per write (sqlite, synchronous: full), ${ROUNDS} interleaved rounds, ${huge ? 'huge pages' : 'no huge pages'}:`,
);
for (const [si, size] of SIZES.entries()) {
  for (const [pi, page] of PAGES.entries()) {
    const xs = ms[si]?.[pi] as number[];
    const f = (x: number) => x.toFixed(x < 10 ? 2 : 1);
    console.log(
      `  ${size.label.padEnd(8)}page_size ${String(page).padEnd(6)} ${f(median(xs)).padStart(7)} ms  (${f(Math.min(...xs))}–${f(Math.max(...xs))})`,
    );
  }
}
