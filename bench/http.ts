/**
 * HTTP write API benchmark (after `npm run build`):
 * `node dist/bench/http.js [--quick] [--large] [--rounds N] [--sizes LIST] [--no-juggler]
 *  [--huge-pages | --both-modes] [--page-size LIST] [--blob-io LIST] [--help]`.
 *
 * Uploads (`PUT /models/{id}`) and downloads (`GET /models/{id}`) of 1 KiB, 1 MiB and 64 MiB
 * models (`--large`: also 256 MiB; `--sizes 1k,1m,64m,256m`: these only), one request at a time
 * on one keep-alive connection, against servers in child processes (so that each one's peak RSS
 * is its own), **interleaved**: each round measures every server once per size, in an order
 * rotated from round to round, so that a change of the machine's load hits all of them alike; the
 * ratios to `bare` are taken per round and reported as median and range. The servers:
 * - `aimm-store`: the real daemon (`serve`, sqlite backend with its defaults — `synchronous:
 *   full` —, HTTP and Juggler controls; `--page-size 4096,16384`: one daemon per `page_size`,
 *   named `aimm-store/4096`…; `--blob-io auto,off`: one daemon per `blob_io`, named
 *   `aimm-store/auto`…);
 * - `bare`: a bare `node:http` server doing `fs.writeFile` of the body into a temp folder
 *   (`bench/http-bare-server.ts`), `bare+fsync`: the same with an fdatasync per file (as
 *   durable as a sqlite commit), and `bare+sqlite`: the same server storing the body in AIMM's
 *   `models` table of a SQLite file opened as the sqlite backend opens it, with nothing else (no
 *   hash, metadata or triggers): what SQLite alone costs;
 * - `juggler`: the same daemon through the Juggler path (the client library's put/get: base64 in
 *   JSON over WebSocket; not at 256 MiB, over the client's WebSocket message limit; left out with
 *   `--no-juggler`).
 * `--huge-pages` starts every server with `HUGE_PAGES_ENV` (glibc's malloc asking for transparent
 * huge pages); `--both-modes` runs each server twice, plain and with huge pages (names suffixed
 * `+hp`), all interleaved, each mode's ratios taken to the bare servers of the same mode.
 * Prints, per size and server, the median MB/s per direction and the per-round ratios to `bare`
 * and `bare+fsync` (median, range), and the peak RSS during a round's uploads (Linux `VmHWM`,
 * reset before each measurement through `/proc/<pid>/clear_refs`) above the RSS just before them,
 * largest over the rounds, in multiples of the model, and the same for the downloads (above the
 * RSS just before them). The models of a measurement are deleted
 * after it (outside the timing; the daemon keeps no history in this bench) so that the files do
 * not grow from round to round.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { JugglerClient } from '../src/client/index.js';
import { DAEMON_MAIN, HUGE_PAGES_ENV, procStatusMiB, resetPeak } from './child.js';
import { median } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const MAIN = DAEMON_MAIN;
const USAGE = `usage: node dist/bench/http.js [--quick] [--large] [--rounds N] [--sizes LIST]
  [--no-juggler] [--huge-pages | --both-modes] [--page-size LIST] [--blob-io LIST]
  --quick          fewer requests per measurement, 3 rounds
  --large          also 256 MiB models
  --rounds N       interleaved rounds (default 5, --quick 3)
  --sizes LIST     only these sizes, of 1k,1m,64m,256m (comma-separated)
  --no-juggler     leave out the Juggler path
  --huge-pages     start every server with ${Object.entries(HUGE_PAGES_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}
  --both-modes     every server twice, plain and with huge pages (+hp), interleaved
  --page-size LIST one daemon per sqlite page_size, e.g. 4096,16384 (default: one, the
                   backend's default)
  --blob-io LIST   one daemon per sqlite blob_io, e.g. auto,off (default: one, the
                   backend's default)`;
const argv = process.argv.slice(2);
if (argv.includes('--help')) {
  console.log(USAGE);
  process.exit(0);
}
function flagValue(flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}
const quick = argv.includes('--quick');
const large = argv.includes('--large');
const ROUNDS = Number(flagValue('--rounds') ?? (quick ? 3 : 5));
if (!(Number.isInteger(ROUNDS) && ROUNDS > 0)) throw new Error('--rounds takes a positive integer');
const withJuggler = !argv.includes('--no-juggler');
const MODES: ('plain' | 'huge')[] = argv.includes('--both-modes')
  ? ['plain', 'huge']
  : argv.includes('--huge-pages')
    ? ['huge']
    : ['plain'];
/** The daemons' sqlite `page_size`s (one daemon each; undefined: the backend's default). */
const PAGE_SIZES: (number | undefined)[] = flagValue('--page-size')?.split(',').map(Number) ?? [
  undefined,
];
/** The daemons' sqlite `blob_io`s (one daemon each, for every page size). */
const BLOB_IOS: (string | undefined)[] = flagValue('--blob-io')?.split(',') ?? [undefined];
for (const b of BLOB_IOS) {
  if (b !== undefined && b !== 'auto' && b !== 'off') throw new Error('--blob-io takes auto,off');
}
const MiB = 1024 * 1024;

const ALL_SIZES: { key: string; label: string; bytes: number; count: number }[] = [
  { key: '1k', label: '1 KiB', bytes: 1024, count: quick ? 50 : 200 },
  { key: '1m', label: '1 MiB', bytes: MiB, count: quick ? 5 : 16 },
  { key: '64m', label: '64 MiB', bytes: 64 * MiB, count: quick ? 1 : 2 },
  { key: '256m', label: '256 MiB', bytes: 256 * MiB, count: 1 },
];
const sizesArg = flagValue('--sizes')?.split(',');
for (const k of sizesArg ?? []) {
  if (!ALL_SIZES.some((s) => s.key === k)) throw new Error(`--sizes: unknown size '${k}'`);
}
const SIZES = ALL_SIZES.filter((s) =>
  sizesArg === undefined ? s.key !== '256m' || large : sizesArg.includes(s.key),
);

interface Server {
  name: string;
  child: ChildProcess;
  http: number;
  juggler?: number;
}

function startChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  ports: (line: string) => Partial<Server>,
): Promise<Server> {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    let text = '';
    const found: Partial<Server> = {};
    child.on('exit', (code) => reject(new Error(`${name} exited (${code})`)));
    child.stdout?.on('data', (b: Buffer) => {
      text += b.toString();
      const lines = text.split('\n');
      text = lines.pop() ?? '';
      for (const l of lines) Object.assign(found, ports(l));
      if (
        found.http !== undefined &&
        (!name.startsWith('aimm-store') || found.juggler !== undefined)
      ) {
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume();
        resolve({
          name,
          child,
          http: found.http,
          ...(found.juggler ? { juggler: found.juggler } : {}),
        });
      }
    });
  });
}

function startDaemon(
  dir: string,
  name: string,
  env: Record<string, string>,
  pageSize: number | undefined,
  blobIo: string | undefined,
): Promise<Server> {
  const conf = join(dir, 'bench.json');
  writeFileSync(
    conf,
    JSON.stringify({
      name: 'bench',
      backend: {
        module: 'aimm-store/backends/sqlite',
        path: join(dir, 'bench.db'),
        history: { keep: 0 },
        ...(pageSize === undefined ? {} : { page_size: pageSize }),
        ...(blobIo === undefined ? {} : { blob_io: blobIo }),
      },
      control: [
        {
          module: 'aimm-store/controls/juggler',
          server: { host: '127.0.0.1', port: 0 },
          max_message_size: 536_870_888,
        },
        { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
      ],
      log: { level: 'info' },
    }),
  );
  return startChild(name, [MAIN, 'serve', '--conf', conf], env, (l) => {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(l) as Record<string, unknown>;
    } catch {
      return {};
    }
    if (j.msg !== 'listening') return {};
    return j.control === 'http' ? { http: Number(j.port) } : { juggler: Number(j.port) };
  });
}

function startBare(
  dir: string,
  name: string,
  mode: 'file' | 'fsync' | 'sqlite',
  env: Record<string, string>,
): Promise<Server> {
  const args = [join(here, 'http-bare-server.js'), dir, ...(mode === 'file' ? [] : [`--${mode}`])];
  return startChild(name, args, env, (l) =>
    l.startsWith('listening ') ? { http: Number(l.slice(10)) } : {},
  );
}

/**
 * The keep-alive connection of the current measurement: a new one each time, so that a server's
 * keep-alive timeout (5 s) cannot close a connection idle while the others were measured just as
 * it is reused (a "socket hang up").
 */
let agent = new Agent({ keepAlive: true, maxSockets: 1 });

function httpCall(port: number, method: string, path: string, body?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['Content-Length'] = String(body.length);
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode}`));
        else resolve(Buffer.concat(chunks));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One server measured once at one size. */
interface Sample {
  putMBs: number;
  getMBs: number;
  /** Peak RSS during the uploads above the RSS before them (MiB). */
  extraMiB: number;
  /** Peak RSS during the downloads above the RSS before them (MiB). */
  getExtraMiB: number;
}

interface Contender {
  name: string;
  /** Index (in the contender list) of the `bare` and `bare+fsync` servers of the same mode. */
  bare: number;
  bareSync: number;
  server: Server;
  /** Through the Juggler control (a client connected for each measurement) instead of HTTP. */
  juggler: boolean;
}

let nextId = 1_000;

async function measure(c: Contender, size: (typeof SIZES)[number], body: Buffer): Promise<Sample> {
  // A fresh Juggler connection each time: a long blocking write elsewhere cannot have timed it out.
  const juggler = c.juggler
    ? await JugglerClient.connect(`ws://127.0.0.1:${c.server.juggler}/`)
    : null;
  try {
    return await measureWith(c, juggler, size, body);
  } finally {
    await juggler?.close();
  }
}

async function measureWith(
  c: Contender,
  juggler: JugglerClient | null,
  size: (typeof SIZES)[number],
  body: Buffer,
): Promise<Sample> {
  const pid = c.server.child.pid as number;
  agent.destroy();
  agent = new Agent({ keepAlive: true, maxSockets: 1 });
  await new Promise((r) => setTimeout(r, 100));
  const idle = procStatusMiB(pid, 'VmRSS');
  const reset = resetPeak(pid);
  const ids: number[] = [];
  let t0 = performance.now();
  for (let i = 0; i < size.count; i++) {
    if (juggler !== null) {
      const id = (await juggler.put('bench.Model', body)).instanceId;
      ids.push(id);
      // Ids are never reused, even deleted ones: the next PUT takes one above.
      nextId = Math.max(nextId, id + 1);
    } else {
      const id = nextId++;
      await httpCall(c.server.http, 'PUT', `/models/${id}?type=bench.Model`, body);
      ids.push(id);
    }
  }
  const putS = (performance.now() - t0) / 1000;
  const peak = reset ? procStatusMiB(pid, 'VmHWM') : Number.NaN;
  const beforeGets = procStatusMiB(pid, 'VmRSS');
  const resetForGets = resetPeak(pid);
  t0 = performance.now();
  for (const id of ids) {
    const got =
      juggler !== null
        ? (await juggler.get(id)).instance
        : await httpCall(c.server.http, 'GET', `/models/${id}`);
    if (got.length !== body.length) throw new Error(`${c.name}: got ${got.length} bytes`);
  }
  const getS = (performance.now() - t0) / 1000;
  const getPeak = resetForGets ? procStatusMiB(pid, 'VmHWM') : Number.NaN;
  for (const id of ids) await httpCall(c.server.http, 'DELETE', `/models/${id}`);
  const mb = (size.bytes * size.count) / 1e6;
  return {
    putMBs: mb / putS,
    getMBs: mb / getS,
    extraMiB: peak - idle,
    getExtraMiB: getPeak - beforeGets,
  };
}

function range(xs: number[]): string {
  const f = (x: number) => x.toFixed(2);
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aimm-bench-http-'));
  const servers: Server[] = [];
  try {
    const contenders: Contender[] = [];
    for (const mode of MODES) {
      const env: Record<string, string> = mode === 'huge' ? { ...HUGE_PAGES_ENV } : {};
      const sfx = MODES.length > 1 && mode === 'huge' ? '+hp' : '';
      const bare = await startBare(mkdtempSync(join(dir, 'bare-')), `bare${sfx}`, 'file', env);
      const bareSync = await startBare(
        mkdtempSync(join(dir, 'sync-')),
        `bare+fsync${sfx}`,
        'fsync',
        env,
      );
      const bareSqlite = await startBare(
        mkdtempSync(join(dir, 'sqlite-')),
        `bare+sqlite${sfx}`,
        'sqlite',
        env,
      );
      servers.push(bare, bareSync, bareSqlite);
      const b = contenders.length;
      const f = b + 1;
      contenders.push(
        { name: bare.name, server: bare, juggler: false, bare: b, bareSync: f },
        { name: bareSync.name, server: bareSync, juggler: false, bare: b, bareSync: f },
        { name: bareSqlite.name, server: bareSqlite, juggler: false, bare: b, bareSync: f },
      );
      for (const [pageSize, blobIo] of PAGE_SIZES.flatMap((p) =>
        BLOB_IOS.map((b) => [p, b] as const),
      )) {
        const ps =
          (PAGE_SIZES.length > 1 ? `/${pageSize}` : '') + (BLOB_IOS.length > 1 ? `/${blobIo}` : '');
        const daemonDir = mkdtempSync(join(dir, 'daemon-'));
        const daemon = await startDaemon(daemonDir, `aimm-store${ps}${sfx}`, env, pageSize, blobIo);
        servers.push(daemon);
        contenders.push({
          name: daemon.name,
          server: daemon,
          juggler: false,
          bare: b,
          bareSync: f,
        });
        if (withJuggler) {
          const name = `juggler${ps}${sfx}`;
          contenders.push({ name, server: daemon, juggler: true, bare: b, bareSync: f });
        }
      }
    }
    // samples[size][contender] = one Sample per round
    const samples = SIZES.map(() => contenders.map((): Sample[] => []));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [si, size] of SIZES.entries()) {
        const body = randomBytes(size.bytes);
        for (let k = 0; k < contenders.length; k++) {
          const ci = (k + round) % contenders.length;
          const c = contenders[ci] as Contender;
          // Beyond ≈ 100 MiB a Juggler message (base64 in JSON) is over the client's WebSocket limit.
          if (c.juggler && size.bytes > 64 * MiB) continue;
          samples[si]?.[ci]?.push(await measure(c, size, body));
        }
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    console.log(
      `HTTP write API (sqlite backend, synchronous: full${PAGE_SIZES[0] === undefined ? '' : `, page_size ${PAGE_SIZES.join(' / ')}`}) vs bare node:http, one connection, ${ROUNDS} interleaved rounds, ${MODES.length > 1 ? 'plain and huge pages (+hp)' : MODES[0] === 'huge' ? 'huge pages' : 'no huge pages'}:`,
    );
    console.log(
      `  ${'size'.padEnd(8)}${'server'.padEnd(20)}${'PUT MB/s'.padStart(9)}  ${'PUT ×bare'.padEnd(19)}${'PUT ×fsync'.padEnd(19)}${'GET MB/s'.padStart(9)}  ${'GET ×bare'.padEnd(19)}${'PUT peak − idle'.padEnd(22)}GET peak − before (max MiB, × model)`,
    );
    for (const [si, size] of SIZES.entries()) {
      const per = samples[si] as Sample[][];
      for (const [ci, c] of contenders.entries()) {
        const xs = per[ci] as Sample[];
        const b = per[c.bare] as Sample[];
        const f = per[c.bareSync] as Sample[];
        if (xs.length === 0) continue;
        const ratio = (ys: Sample[], k: 'putMBs' | 'getMBs') =>
          range(xs.map((x, i) => x[k] / (ys[i] as Sample)[k]));
        const extra = Math.max(...xs.map((x) => x.extraMiB));
        const getExtra = Math.max(...xs.map((x) => x.getExtraMiB));
        const peakText = (mib: number) =>
          `+${mib.toFixed(0)} (${(mib / (size.bytes / MiB)).toFixed(2)}×)`;
        console.log(
          `  ${size.label.padEnd(8)}${c.name.padEnd(20)}${median(xs.map((x) => x.putMBs))
            .toFixed(1)
            .padStart(9)}  ${ratio(b, 'putMBs').padEnd(19)}${ratio(f, 'putMBs').padEnd(19)}${median(
            xs.map((x) => x.getMBs),
          )
            .toFixed(1)
            .padStart(
              9,
            )}  ${ratio(b, 'getMBs').padEnd(19)}${peakText(extra).padEnd(22)}${peakText(getExtra)}`,
        );
      }
    }
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
