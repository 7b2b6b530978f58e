/**
 * Failover benchmark: `node dist/bench/redundancy.js [--quick] [--trials N]` (after
 * `npm run build`). A redundant Hat of test doubles — the hat-monitor double, two event-server
 * doubles in group `event`, two aimm-store daemons (child processes, default timing settings) in
 * group `aimm` — and a client that writes as soon as it can.
 *
 * - active death: `kill -9` of the active daemon → the first write the standby acknowledges.
 *   Baseline, same trial: → the monitor's state showing the standby blessed (what the monitor
 *   needs to detect the death and bless the next; a killed process's TCP connection closes at
 *   once, so with a kill it is the monitor's reaction time). Ours = the difference: the blessing
 *   handshake (response token, echo), the sync with Hat, and the client's next attempt.
 * - event-server death: the active event server stops (SIGTERM-like: its monitor component closes,
 *   its eventer connections close) → the first write acknowledged through the other one.
 *   Baseline, same trial: → the other event server operational (the monitor's detection and the
 *   event server's own start-up, Hat's part). Ours = the difference: closing the old connection,
 *   the reconnect delay (`reconnect.min_delay_ms`, default 200 ms, halved to doubled by jitter),
 *   connect, init, catch-up.
 *
 * Prints the median and max of each over the trials (default 20; --quick 5). The goal (issue 10):
 * ours ≤ 500 ms on top of the monitor's detection.
 */
import { performance } from 'node:perf_hooks';
import {
  isNotActive,
  type Node,
  type RedundantHat,
  settled,
  startRedundantHat,
} from '../test/daemon/redundancy-support.js';
import { median, percentile } from './stats.js';

const quick = process.argv.includes('--quick');
const trialsArg = process.argv.indexOf('--trials');
const TRIALS = trialsArg > 0 ? Number(process.argv[trialsArg + 1]) : quick ? 5 : 20;

/** The event backend's defaults (the shared test setup shortens them). */
const DEFAULTS = {
  backend: { reconnect: { min_delay_ms: 200, max_delay_ms: 30_000 }, request_timeout_ms: 30_000 },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bytes = Buffer.from('x'.repeat(1024));

/** Resolves with the time of the first write `node` acknowledges, trying every `everyMs`. */
async function firstWrite(node: Node, everyMs = 2, limitMs = 30_000): Promise<number> {
  const deadline = performance.now() + limitMs;
  while (performance.now() < deadline) {
    try {
      const client = await node.client();
      await client.put('bench.Model', bytes);
      return performance.now();
    } catch (err) {
      if (!isNotActive(err)) await node.closeClient();
      await sleep(everyMs);
    }
  }
  throw new Error(`no write acknowledged by ${node.name} within ${limitMs} ms`);
}

/** Resolves with the time the monitor first shows `name` active in group `aimm`. */
async function blessed(hat: RedundantHat, name: string): Promise<number> {
  await hat.monitor.waitFor(
    (cs) => cs.some((c) => c.group === 'aimm' && c.name === name && c.blessingReq.token !== null),
    30_000,
  );
  return performance.now();
}

function report(what: string, ours: number[], base: number[], total: number[]): void {
  const f = (x: number) => `${x.toFixed(0)} ms`;
  console.log(
    `${what} (${ours.length} trials): total median ${f(median(total))} max ${f(percentile(total, 100))}; ` +
      `baseline (Hat's part) median ${f(median(base))} max ${f(percentile(base, 100))}; ` +
      `ours median ${f(median(ours))} max ${f(percentile(ours, 100))}` +
      ` (ours/total ${(median(ours) / median(total)).toFixed(2)})`,
  );
}

/** One failover's times: Hat's part (`base`), until writes flow (`total`), and ours in between. */
interface Trial {
  base: number;
  total: number;
  ours: number;
}

/** Runs TRIALS trials (a dot each, unless quick) and reports their times as `what`. */
async function runTrials(what: string, trial: () => Promise<Trial>): Promise<void> {
  const ours: number[] = [];
  const base: number[] = [];
  const total: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const r = await trial();
    base.push(r.base);
    total.push(r.total);
    ours.push(r.ours);
    if (!quick) process.stdout.write('.');
  }
  if (!quick) process.stdout.write('\n');
  report(what, ours, base, total);
}

async function activeDeath(hat: RedundantHat): Promise<void> {
  let nodes = [await hat.node('a', DEFAULTS), await hat.node('b', DEFAULTS)];
  await runTrials('active daemon killed → standby accepts writes', async () => {
    const active = await settled(nodes);
    const standby = nodes.find((n) => n !== active) as Node;
    await firstWrite(active);
    await standby.client();
    const killedAt = performance.now();
    const blessing = blessed(hat, standby.name);
    const write = firstWrite(standby);
    await active.stop('SIGKILL');
    const [tBless, tWrite] = await Promise.all([blessing, write]);
    await active.closeClient();
    // The killed one comes back as the standby for the next trial.
    const revived = await hat.node(active.name, DEFAULTS);
    nodes = [standby, revived];
    return { base: tBless - killedAt, total: tWrite - killedAt, ours: tWrite - tBless };
  });
  for (const n of nodes) await n.stop('SIGKILL');
}

async function eventServerDeath(hat: RedundantHat): Promise<void> {
  const nodes = [await hat.node('c', DEFAULTS), await hat.node('d', DEFAULTS)];
  await runTrials('active event server stopped → writes flow again', async () => {
    const active = await settled(nodes);
    const op = await hat.cluster.waitForOperational();
    await firstWrite(active);
    const killedAt = performance.now();
    const operational = hat.cluster
      .waitForOperational({ except: op, timeoutMs: 30_000 })
      .then(() => performance.now());
    const write = (async () => {
      // Writes through the dying server may still be acknowledged: the first after the kill
      // that is acknowledged by the other server is the one that counts.
      const other = hat.cluster.servers.find((s) => s.index !== op);
      for (;;) {
        const at = await firstWrite(active);
        const r = await active.readyz();
        if (r?.event_server?.serverId === other?.serverId) return at;
        await sleep(1);
      }
    })();
    await hat.cluster.kill(op);
    const [tOp, tWrite] = await Promise.all([operational, write]);
    await hat.cluster.revive(op);
    return { base: tOp - killedAt, total: tWrite - killedAt, ours: Math.max(0, tWrite - tOp) };
  });
  for (const n of nodes) await n.stop('SIGKILL');
}

async function main(): Promise<void> {
  console.log(
    `failover, ${TRIALS} trials each; test doubles of hat-monitor (BLESS_ONE, detection by TCP close) and hat-event; daemons with default timing`,
  );
  const hat = await startRedundantHat();
  try {
    await activeDeath(hat);
    await eventServerDeath(hat);
  } finally {
    await hat.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
