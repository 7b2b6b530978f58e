/**
 * `node dist/bench/one-write.js [--quick] [--size MiB] [--writes N] [--series N] [--snapshot]
 * [--trace FILE]`: what one large write holds in the daemon, and what a series of them costs
 * (event backend, Hat test peer in its own process).
 *
 * Memory: before each write the daemon collects its garbage (started with `--expose-gc` and
 * bench/gc-on-signal.js, a full GC on SIGUSR2) and its RSS peak is reset; the write's peak over
 * the RSS before it is printed in models. HTTP and Juggler updates alternate. That daemon runs
 * with {@link MMAP_THRESHOLD_ENV} so that freed memory goes back to the system and RSS follows
 * what is live. `--trace FILE`: it also loads bench/alloc-trace.js, which appends every
 * allocation of 1 MiB or more, with its callers, to FILE (a `----` line before each write).
 *
 * Cost: a second, plain daemon (no preload, no environment) takes `--series N` updates per path
 * back to back (HTTP, then Juggler): writes per second and its CPU per write (`/proc` user +
 * system). `AIMM_BENCH_DAEMON` selects the daemon build, as for every bench.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JugglerClient } from '../src/client/index.js';
import {
  type Child,
  cpuOf,
  DAEMON_MAIN,
  listeningPort,
  MMAP_THRESHOLD_ENV,
  procStatusMiB,
  resetPeak,
  startNode,
  writeEventDaemonConf,
} from './child.js';
import { httpPut } from './http-put.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? (args[at + 1] ?? fallback) : fallback;
};
const quick = args.includes('--quick');
const SIZE = Number(arg('--size', '10')) * MiB;
const WRITES = Number(arg('--writes', quick ? '2' : '5'));
const SERIES = Number(arg('--series', quick ? '4' : '20'));
const SNAPSHOT = args.includes('--snapshot');
const TRACE = arg('--trace', '');
const count = (n: number) => Number.isInteger(n) && n >= 0;
if (!(SIZE > 0) || !count(WRITES) || !count(SERIES))
  throw new Error('bad --size/--writes/--series');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Path = 'http' | 'juggler';

/** A daemon on the event backend with both controls, its clients and a model per path. */
interface Daemon {
  proc: Child;
  pid: number;
  client: JugglerClient;
  agent: Agent;
  hport: number;
  jugglerId: number;
  write(path: Path, body: Buffer): Promise<void>;
  close(): Promise<void>;
}

async function startDaemon(
  dir: string,
  peerPort: number,
  name: string,
  preload: string[],
  env: Record<string, string>,
): Promise<Daemon> {
  const conf = writeEventDaemonConf(dir, name, peerPort, SNAPSHOT);
  const proc = startNode([...preload, DAEMON_MAIN, 'serve', '--conf', conf], 'ignore', env);
  const jport = await listeningPort(proc, 'juggler');
  const hport = await listeningPort(proc, 'http');
  await proc.line((l) => l.includes('"msg":"ready"'));
  const client = await JugglerClient.connect(`ws://127.0.0.1:${jport}/`);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const jugglerId = (await client.put('bench.Model', Buffer.alloc(1000))).instanceId;
  const httpPath = `/models/${jugglerId + 1}?type=bench.Model`;
  await httpPut(agent, hport, httpPath, Buffer.alloc(1000));
  return {
    proc,
    pid: proc.child.pid as number,
    client,
    agent,
    hport,
    jugglerId,
    async write(path, body) {
      if (path === 'http') await httpPut(agent, hport, httpPath, body);
      else await client.put('bench.Model', body, { instanceId: jugglerId });
    },
    async close() {
      await client.close();
      agent.destroy();
      proc.child.kill('SIGTERM');
      await proc.exited;
    },
  };
}

async function memory(d: Daemon, body: Buffer): Promise<string> {
  const peaks: Record<Path, string[]> = { http: [], juggler: [] };
  for (let i = 0; i < WRITES; i++) {
    for (const path of ['http', 'juggler'] as const) {
      process.kill(d.pid, 'SIGUSR2');
      await sleep(400);
      if (TRACE !== '') process.kill(d.pid, 'SIGUSR1');
      const before = procStatusMiB(d.pid, 'VmRSS');
      resetPeak(d.pid);
      body.write(`write ${i} ${path}`);
      await d.write(path, body);
      peaks[path].push((((procStatusMiB(d.pid, 'VmHWM') - before) * MiB) / SIZE).toFixed(2));
    }
  }
  return `one ${SIZE / MiB} MiB write at a time after a full GC, event backend${SNAPSHOT ? ' with a snapshot' : ''}: the daemon's peak over its RSS before the write, in models
  http     ${peaks.http.join('  ')}
  juggler  ${peaks.juggler.join('  ')}`;
}

async function cost(d: Daemon, body: Buffer): Promise<string> {
  const lines: string[] = [];
  for (const path of ['http', 'juggler'] as const) {
    const c0 = cpuOf(d.pid);
    const t0 = performance.now();
    for (let i = 0; i < SERIES; i++) {
      body.write(`series ${i} ${path}`);
      await d.write(path, body);
    }
    const ms = performance.now() - t0;
    const c1 = cpuOf(d.pid);
    const cpu = (c1.user + c1.system - c0.user - c0.system) / SERIES;
    lines.push(
      `  ${path.padEnd(8)} ${((SERIES / ms) * 1000).toFixed(2)} writes/s, ${cpu.toFixed(1)} ms of daemon CPU per write`,
    );
  }
  return `${SERIES} ${SIZE / MiB} MiB updates back to back per path, plain daemon:\n${lines.join('\n')}`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aimm-one-write-'));
  const peer = startNode([join(HERE, 'large-models.js'), '--peer'], 'pipe');
  try {
    const port = (JSON.parse(await peer.line((l) => l.startsWith('{'))) as { port: number }).port;
    const body = Buffer.alloc(SIZE);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
    if (WRITES > 0) {
      const preload = ['--expose-gc', '--import', join(HERE, 'gc-on-signal.js')];
      if (TRACE !== '') preload.push('--import', join(HERE, 'alloc-trace.js'));
      const env: Record<string, string> = { ...MMAP_THRESHOLD_ENV };
      if (TRACE !== '') env.AIMM_ALLOC_TRACE = TRACE;
      const d = await startDaemon(dir, port, 'memory', preload, env);
      console.log(await memory(d, body));
      await d.close();
    }
    if (SERIES > 0) {
      const d = await startDaemon(dir, port, 'cost', [], {});
      console.log(await cost(d, body));
      await d.close();
    }
  } finally {
    peer.child.stdin?.end();
    await peer.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
