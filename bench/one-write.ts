/**
 * `node dist/bench/one-write.js [--quick] [--size MiB] [--writes N] [--snapshot] [--trace FILE]`: what one
 * large write holds in the daemon (event backend, Hat test peer in its own process).
 *
 * Before each write the daemon collects its garbage (started with `--expose-gc` and
 * bench/gc-on-signal.js, a full GC on SIGUSR2) and its RSS peak is reset; the write's peak over
 * the RSS before it is printed in models. HTTP and Juggler updates alternate. The daemon runs with
 * {@link MMAP_THRESHOLD_ENV} so that freed memory goes back to the system and RSS follows what is
 * live. `--trace FILE`: the daemon also loads bench/alloc-trace.js, which appends every
 * allocation of 1 MiB or more, with its callers, to FILE (a `----` line before each write).
 * `AIMM_BENCH_DAEMON` selects the daemon build, as for every bench.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JugglerClient } from '../src/client/index.js';
import {
  DAEMON_MAIN,
  listeningPort,
  MMAP_THRESHOLD_ENV,
  procStatusMiB,
  resetPeak,
  startNode,
} from './child.js';
import { httpPut } from './http-put.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? (args[at + 1] ?? fallback) : fallback;
};
const SIZE = Number(arg('--size', '10')) * MiB;
const WRITES = Number(arg('--writes', args.includes('--quick') ? '2' : '5'));
const SNAPSHOT = args.includes('--snapshot');
const TRACE = arg('--trace', '');
if (!(SIZE > 0) || !(Number.isInteger(WRITES) && WRITES > 0))
  throw new Error('bad --size/--writes');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aimm-one-write-'));
  const peer = startNode([join(HERE, 'large-models.js'), '--peer'], 'pipe');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const port = (JSON.parse(await peer.line((l) => l.startsWith('{'))) as { port: number }).port;
    const conf = join(dir, 'conf.json');
    writeFileSync(
      conf,
      JSON.stringify({
        name: 'one',
        backend: {
          module: 'aimm-store/backends/event',
          model_prefix: ['bench', 'one'],
          ...(SNAPSHOT ? { snapshot: { path: join(dir, 'snapshot.db') } } : {}),
        },
        hat: { eventer_server: { host: '127.0.0.1', port } },
        control: [
          { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
          { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
        ],
        log: { level: 'info' },
      }),
    );
    const preload = ['--expose-gc', '--import', join(HERE, 'gc-on-signal.js')];
    if (TRACE !== '') preload.push('--import', join(HERE, 'alloc-trace.js'));
    const env: Record<string, string> = { ...MMAP_THRESHOLD_ENV };
    if (TRACE !== '') env.AIMM_ALLOC_TRACE = TRACE;
    const daemon = startNode([...preload, DAEMON_MAIN, 'serve', '--conf', conf], 'ignore', env);
    const pid = daemon.child.pid as number;
    const jport = await listeningPort(daemon, 'juggler');
    const hport = await listeningPort(daemon, 'http');
    await daemon.line((l) => l.includes('"msg":"ready"'));
    const body = Buffer.alloc(SIZE);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
    const client = await JugglerClient.connect(`ws://127.0.0.1:${jport}/`);
    const first = await client.put('bench.Model', Buffer.alloc(1000));
    await httpPut(
      agent,
      hport,
      `/models/${first.instanceId + 1}?type=bench.Model`,
      Buffer.alloc(1000),
    );
    const peaks: Record<'http' | 'juggler', string[]> = { http: [], juggler: [] };
    for (let i = 0; i < WRITES; i++) {
      for (const path of ['http', 'juggler'] as const) {
        process.kill(pid, 'SIGUSR2');
        await sleep(400);
        if (TRACE !== '') process.kill(pid, 'SIGUSR1');
        const before = procStatusMiB(pid, 'VmRSS');
        resetPeak(pid);
        body.write(`write ${i} ${path}`);
        if (path === 'http') {
          await httpPut(agent, hport, `/models/${first.instanceId + 1}?type=bench.Model`, body);
        } else {
          await client.put('bench.Model', body, { instanceId: first.instanceId });
        }
        peaks[path].push((((procStatusMiB(pid, 'VmHWM') - before) * MiB) / SIZE).toFixed(2));
      }
    }
    await client.close();
    console.log(
      `one ${SIZE / MiB} MiB write at a time after a full GC, event backend${SNAPSHOT ? ' with a snapshot' : ''}: the daemon's peak over its RSS before the write, in models
  http     ${peaks.http.join('  ')}
  juggler  ${peaks.juggler.join('  ')}`,
    );
    daemon.child.kill('SIGTERM');
    await daemon.exited;
  } finally {
    agent.destroy();
    peer.child.stdin?.end();
    await peer.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
