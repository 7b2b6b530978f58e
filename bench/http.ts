/**
 * HTTP write API benchmark: `node dist/bench/http.js [--quick] [--large]` (after `npm run build`).
 *
 * Uploads (`PUT /models/{id}`) and downloads (`GET /models/{id}`) of 1 KiB, 1 MiB and 64 MiB
 * models (`--large`: also 256 MiB), one request at a time on one keep-alive connection, against
 * servers in child processes (so that each one's peak RSS is its own):
 * - `aimm-store`: the real daemon (`serve`, sqlite backend with its defaults — `synchronous:
 *   full` —, HTTP and Juggler controls);
 * - `bare`: a bare `node:http` server doing `fs.writeFile` of the body into a temp folder
 *   (`bench/http-bare-server.ts`), and `bare+fsync`: the same with an fdatasync per file (as
 *   durable as a sqlite commit);
 * - `juggler`: the same daemon through the Juggler path (the client library's put/get: base64 in
 *   JSON over WebSocket; not at 256 MiB, over the client's WebSocket message limit).
 * Prints MB/s per direction and size, the ratio to `bare`, and each server's peak RSS during the
 * uploads of a size (Linux `VmHWM`, reset before each size through `/proc/<pid>/clear_refs`)
 * against its idle RSS before them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { JugglerClient } from '../src/client/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const MAIN = join(here, '..', 'src', 'cli', 'main.js');
const quick = process.argv.includes('--quick');
const large = process.argv.includes('--large');
const MiB = 1024 * 1024;

const SIZES: { label: string; bytes: number; count: number }[] = [
  { label: '1 KiB', bytes: 1024, count: quick ? 100 : 500 },
  { label: '1 MiB', bytes: MiB, count: quick ? 10 : 40 },
  { label: '64 MiB', bytes: 64 * MiB, count: quick ? 2 : 4 },
  ...(large ? [{ label: '256 MiB', bytes: 256 * MiB, count: 2 }] : []),
];

interface Server {
  name: string;
  child: ChildProcess;
  http: number;
  juggler?: number;
}

function startChild(
  name: string,
  args: string[],
  ports: (line: string) => Partial<Server>,
): Promise<Server> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let text = '';
    const found: Partial<Server> = {};
    child.on('exit', (code) => reject(new Error(`${name} exited (${code})`)));
    child.stdout?.on('data', (b: Buffer) => {
      text += b.toString();
      const lines = text.split('\n');
      text = lines.pop() ?? '';
      for (const l of lines) Object.assign(found, ports(l));
      if (found.http !== undefined && (name !== 'aimm-store' || found.juggler !== undefined)) {
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

function startDaemon(dir: string): Promise<Server> {
  const conf = join(dir, 'bench.json');
  writeFileSync(
    conf,
    JSON.stringify({
      name: 'bench',
      backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'bench.db') },
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
  return startChild('aimm-store', [MAIN, 'serve', '--conf', conf], (l) => {
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

function startBare(dir: string, fsync: boolean): Promise<Server> {
  const args = [join(here, 'http-bare-server.js'), dir, ...(fsync ? ['--fsync'] : [])];
  return startChild(fsync ? 'bare+fsync' : 'bare', args, (l) =>
    l.startsWith('listening ') ? { http: Number(l.slice(10)) } : {},
  );
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

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

function status(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync(`/proc/${pid}/status`, 'utf8'),
  );
  return Number(m?.[1] ?? Number.NaN) / 1024;
}

function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

interface Row {
  server: string;
  size: string;
  putMBs: number;
  getMBs: number;
  idleMiB: number;
  peakMiB: number;
}

async function measure(
  s: Server,
  size: (typeof SIZES)[number],
  body: Buffer,
  base: number,
  juggler: JugglerClient | null,
): Promise<Row> {
  const pid = s.child.pid as number;
  await new Promise((r) => setTimeout(r, 200));
  const idle = status(pid, 'VmRSS');
  const reset = resetPeak(pid);
  const ids: number[] = [];
  let t0 = performance.now();
  for (let i = 0; i < size.count; i++) {
    const id = base + i;
    if (juggler !== null) ids.push((await juggler.put('bench.Model', body)).instanceId);
    else {
      await httpCall(s.http, 'PUT', `/models/${id}?type=bench.Model`, body);
      ids.push(id);
    }
  }
  const putS = (performance.now() - t0) / 1000;
  const peak = reset ? status(pid, 'VmHWM') : Number.NaN;
  t0 = performance.now();
  for (const id of ids) {
    const got =
      juggler !== null
        ? (await juggler.get(id)).instance
        : await httpCall(s.http, 'GET', `/models/${id}`);
    if (got.length !== body.length) throw new Error(`${s.name}: got ${got.length} bytes`);
  }
  const getS = (performance.now() - t0) / 1000;
  const mb = (size.bytes * size.count) / 1e6;
  return {
    server: s.name,
    size: size.label,
    putMBs: mb / putS,
    getMBs: mb / getS,
    idleMiB: idle,
    peakMiB: peak,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aimm-bench-http-'));
  const servers: Server[] = [];
  try {
    const daemon = await startDaemon(join(dir));
    servers.push(daemon);
    const bareDir = mkdtempSync(join(dir, 'bare-'));
    const bare = await startBare(bareDir, false);
    servers.push(bare);
    const bareSync = await startBare(mkdtempSync(join(dir, 'baresync-')), true);
    servers.push(bareSync);
    const client = await JugglerClient.connect(`ws://127.0.0.1:${daemon.juggler}/`);
    const rows: Row[] = [];
    let base = 1_000;
    for (const size of SIZES) {
      const body = randomBytes(size.bytes);
      for (const [s, j] of [
        [bare, null],
        [bareSync, null],
        [daemon, null],
        [{ ...daemon, name: 'juggler' }, client],
      ] as const) {
        // Beyond ≈ 100 MiB a Juggler message (base64 in JSON) is over the client's WebSocket limit.
        if (j !== null && size.bytes > 64 * MiB) continue;
        rows.push(await measure(s, size, body, base, j));
        base += size.count + 10;
      }
    }
    await client.close();
    console.log(
      'HTTP write API (sqlite backend, synchronous: full) vs bare node:http, one connection:',
    );
    console.log(
      `  ${'size'.padEnd(8)}${'server'.padEnd(12)}${'PUT MB/s'.padStart(10)}${'×bare'.padStart(7)}${'×fsync'.padStart(8)}${'GET MB/s'.padStart(10)}${'×bare'.padStart(7)}   peak RSS − idle (MiB), × model`,
    );
    for (const size of SIZES) {
      const of = (n: string) => rows.find((r) => r.size === size.label && r.server === n) as Row;
      const b = of('bare');
      const f = of('bare+fsync');
      for (const r of rows.filter((x) => x.size === size.label)) {
        const extra = r.peakMiB - r.idleMiB;
        console.log(
          `  ${r.size.padEnd(8)}${r.server.padEnd(12)}${r.putMBs.toFixed(1).padStart(10)}${(r.putMBs / b.putMBs).toFixed(2).padStart(7)}${(r.putMBs / f.putMBs).toFixed(2).padStart(8)}${r.getMBs.toFixed(1).padStart(10)}${(r.getMBs / b.getMBs).toFixed(2).padStart(7)}   ${r.idleMiB.toFixed(0)} → ${r.peakMiB.toFixed(0)} (+${extra.toFixed(0)}, ${(extra / (size.bytes / MiB)).toFixed(2)}×)`,
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
