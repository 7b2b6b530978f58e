/**
 * `npm run bench [-- --quick] [-- NAME...]`: every benchmark, one after another, each in its own
 * process (so one's heap and GC do not skew the next). Each prints its figures as ratios against
 * a baseline run in the same process, which is what survives a noisy machine.
 *
 * Benchmarks: sbs (codec vs JSON), sqlite (backend vs raw better-sqlite3), event (backend vs an
 * unbatched eventer client, restart, peak RSS), recovery (time to ready on a Hat with a million
 * unrelated events vs AIMM's `latest` start), juggler (control vs direct backend calls),
 * daemon (start-to-ready, SIGTERM-to-exit, HTTP model reads vs bare node:http), http (HTTP
 * uploads and downloads vs a bare node:http server writing files, and vs Juggler), lone-writer
 * (sequential 1 KiB writes Juggler → daemon → Hat peer vs a direct eventer client), large-models
 * (1 MiB and 10 MiB models through the daemon's Juggler and HTTP paths, event backend with and
 * without a snapshot, vs a direct eventer client; the daemon's peak RSS), redundancy
 * (failover times against the monitor's and the event servers' own part), tls (a TLS handshake
 * plus one request, and a 1 MiB model read, against plain HTTP on the HTTP control), transfer
 * (model history listing vs the backend's own listing or Hat's read; migrate sqlite → event backend
 * vs the event backend's write ceiling, and its peak RSS), console (the
 * web console in headless Chromium with 10 000 models: first paint, usable list, transfer size),
 * allocator (the daemon with glibc's huge-pages tunable vs without; one upload's peak after a GC),
 * one-write (what one 10 MiB write holds in the event backend's daemon, after a full GC).
 * The long reliability campaigns are separate scripts (see docs/reliability.md).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCHES = [
  'sbs',
  'sqlite',
  'event',
  'recovery',
  'juggler',
  'daemon',
  'http',
  'lone-writer',
  'large-models',
  'redundancy',
  'tls',
  'transfer',
  'console',
  'allocator',
  'one-write',
] as const;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const names = args.filter((a) => !a.startsWith('--'));
const unknown = names.filter((n) => !(BENCHES as readonly string[]).includes(n));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHES.join(', ')}\n`,
  );
  process.exit(2);
}
const selected = names.length > 0 ? names : [...BENCHES];
const here = dirname(fileURLToPath(import.meta.url));

let failed = 0;
for (const name of selected) {
  process.stdout.write(`\n===== ${name}${quick ? ' (--quick)' : ''} =====\n`);
  const res = spawnSync(
    process.execPath,
    [join(here, `${name}.js`), ...(quick ? ['--quick'] : [])],
    {
      stdio: 'inherit',
    },
  );
  if (res.status !== 0) {
    failed++;
    process.stderr.write(`benchmark ${name} failed (exit ${res.status ?? res.signal})\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
