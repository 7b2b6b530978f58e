/**
 * Lone-writer benchmark (issue 11, goal 1): `node dist/bench/lone-writer.js [--quick]
 * [--profile DIR]` (after `npm run build`).
 *
 * One writer, sequential 1 KiB writes, each awaited before the next:
 * - ours: the `aimm-store/client` Juggler client → the daemon (a child process: `serve`, event
 *   backend without snapshot, ack `registered`) → the Hat test peer;
 * - baseline: our own eventer client (`src/hat/eventer`) in this process registering one AIMM
 *   event per request and awaiting `MsgRegisterRes`, against the same peer.
 * The peer runs in a child process of its own (as a Hat server would), so its CPU does not share
 * a thread with either writer. Rounds alternate; the ratio is the median of ours/baseline (writes
 * per second). Also printed: the daemon's CPU time per write (user + system, from /proc), which
 * the peer's cost cannot hide. `--profile DIR` runs the daemon with `--cpu-prof` into DIR.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { modelRegisterEvent } from '../src/backends/event/format.js';
import { JugglerClient } from '../src/client/index.js';
import { connect } from '../src/hat/eventer/client.js';
import { median } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MAIN = join(HERE, '..', 'src', 'cli', 'main.js');
const PREFIX = ['bench', 'model'];
const SIZE = 1024;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profileAt = args.indexOf('--profile');
const profileDir = profileAt >= 0 ? (args[profileAt + 1] ?? null) : null;

// ---- the peer in its own process ---------------------------------------------------------------

if (args[0] === '--peer') {
  const { startHatPeer } = await import('../test/peer/hat-peer.js');
  const peer = await startHatPeer({ flushDelayMs: 1000, engineEvents: false });
  process.stdout.write(`${JSON.stringify({ port: peer.port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void peer.close().then(() => process.exit(0)));
} else {
  await main();
}

interface Child {
  child: ChildProcess;
  line(pred: (l: string) => boolean): Promise<string>;
  stop(): Promise<void>;
}

function start(argv: string[], stdin: 'pipe' | 'ignore' = 'ignore'): Child {
  const child = spawn(process.execPath, argv, { stdio: [stdin, 'pipe', 'inherit'] });
  let partial = '';
  const seen: string[] = [];
  let waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  child.stdout?.on('data', (b: Buffer) => {
    partial += b.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      seen.push(l);
      const matched = waiters.filter((w) => w.pred(l));
      waiters = waiters.filter((w) => !matched.includes(w));
      for (const w of matched) w.resolve(l);
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    child,
    line: (pred) => {
      const l = seen.find(pred);
      if (l !== undefined) return Promise.resolve(l);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    stop: async () => {
      if (stdin === 'pipe') child.stdin?.end();
      else child.kill('SIGTERM');
      await exited;
    },
  };
}

/** User + system CPU time of a process, in ms (Linux /proc; 0 elsewhere). */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

function blob(i: number): Uint8Array {
  const b = Buffer.alloc(SIZE, 46);
  b.write(`model ${i}`);
  return b;
}

async function baselineRound(port: number, n: number): Promise<number> {
  const client = await connect(
    { host: '127.0.0.1', port },
    { clientName: 'bench/direct', subscriptions: [[...PREFIX, '*']] },
  );
  const sub = client.events$.subscribe(() => {});
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const res = await client.register([
        modelRegisterEvent(PREFIX, 1_000_000 + i, 'bench.Model', blob(i)),
      ]);
      if (res === null) throw new Error('register refused');
    }
    return (n / (performance.now() - t0)) * 1000;
  } finally {
    sub.unsubscribe();
    await client.close();
  }
}

async function oursRound(url: string, pid: number | undefined, n: number) {
  const client = await JugglerClient.connect(url);
  try {
    await client.put('bench.Model', blob(-1)); // warm the connection
    const cpu0 = cpuMs(pid);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await client.put('bench.Model', blob(i));
    const ms = performance.now() - t0;
    const cpu = cpuMs(pid) - cpu0;
    return { perSec: (n / ms) * 1000, cpuUsPerWrite: (cpu * 1000) / n };
  } finally {
    await client.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aimm-lone-writer-'));
  const peer = start([fileURLToPath(import.meta.url), '--peer'], 'pipe');
  let daemon: Child | null = null;
  try {
    const port = (JSON.parse(await peer.line((l) => l.startsWith('{'))) as { port: number }).port;
    const conf = join(dir, 'daemon.json');
    writeFileSync(
      conf,
      JSON.stringify({
        name: 'bench',
        backend: { module: 'aimm-store/backends/event', model_prefix: PREFIX },
        hat: { eventer_server: { host: '127.0.0.1', port } },
        control: [
          { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
        ],
        log: { level: 'info' },
      }),
    );
    const prof = profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
    daemon = start([...prof, MAIN, 'serve', '--conf', conf]);
    const listening = await daemon.line((l) => l.includes('"listening"'));
    const jport = (JSON.parse(listening) as { port: number }).port;
    const url = `ws://127.0.0.1:${jport}/`;

    const n = quick ? 500 : 3000;
    const rounds = quick ? 2 : 5;
    const base: number[] = [];
    const ours: number[] = [];
    const ratios: number[] = [];
    const cpu: number[] = [];
    await baselineRound(port, 200); // warm-up of both paths
    await oursRound(url, daemon.child.pid, 200);
    for (let r = 0; r < rounds; r++) {
      let b = 0;
      let u = { perSec: 0, cpuUsPerWrite: 0 };
      for (const which of r % 2 === 0 ? ['base', 'ours'] : ['ours', 'base']) {
        if (which === 'base') b = await baselineRound(port, n);
        else u = await oursRound(url, daemon.child.pid, n);
      }
      base.push(b);
      ours.push(u.perSec);
      ratios.push(u.perSec / b);
      cpu.push(u.cpuUsPerWrite);
    }
    console.log(
      `lone writer, 1 KiB sequential writes, n=${n} x ${rounds} rounds (peer in its own process):`,
    );
    console.log(`  direct eventer client  ${median(base).toFixed(0).padStart(6)} writes/s`);
    console.log(
      `  Juggler -> daemon      ${median(ours).toFixed(0).padStart(6)} writes/s   ours/direct ${median(ratios).toFixed(2)}`,
    );
    console.log(
      `  daemon CPU per write   ${median(cpu).toFixed(0).padStart(6)} us (user + system)`,
    );
  } finally {
    await daemon?.stop();
    await peer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
