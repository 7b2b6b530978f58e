/**
 * Long run of the Hat fault campaign (test/reliability/fault-campaign.ts).
 *
 *   node dist/bench/reliability-faults.js --episodes 500 [--variant event|event+snapshot|all]
 *                                         [--seed N] [--faults a,b,...] [--quiet]
 *
 * Faults are drawn at random; each variant gets the given number of episodes. Prints one summary
 * per variant; exits 1 on any violation or problem.
 */
import {
  FAULTS,
  type Fault,
  type FaultSummary,
  runFaultCampaign,
} from '../test/reliability/fault-campaign.js';
import {
  cliArg as arg,
  killChildrenOnSignal,
  progressLog as log,
  randomSeed,
} from '../test/reliability/support.js';

const episodes = Number(arg('episodes', '500'));
const which = arg('variant', 'all');
const seed = Number(arg('seed', String(randomSeed())));
const faults = arg('faults', FAULTS.join(',')).split(',') as Fault[];
killChildrenOnSignal();

const variants = [
  { name: 'event', snapshot: false },
  { name: 'event+snapshot', snapshot: true },
].filter((v) => which === 'all' || v.name === which);
if (variants.length === 0) {
  process.stderr.write(`unknown --variant ${which}\n`);
  process.exit(2);
}

const results: FaultSummary[] = [];
for (const [i, v] of variants.entries()) {
  log(`fault campaign: ${v.name}, ${episodes} episodes, seed ${seed + i}`);
  const s = await runFaultCampaign({
    episodes,
    snapshot: v.snapshot,
    seed: seed + i,
    schedule: 'random',
    faults,
    log,
  });
  results.push(s);
  const lines = [
    `== fault campaign: ${s.variant} (seed ${s.seed}) ==`,
    `episodes (faults survived) ${s.episodes}  ${JSON.stringify(s.faults)}`,
    `outages seen by readiness  ${s.outagesSeen}; reconnects ${s.reconnects}; rebuilds after reset ${s.rebuilds}`,
    `client requests            ${s.requests}: ${s.acked} acknowledged, ${s.failed} failed with an error`,
    `errors by kind             ${JSON.stringify(s.errors)}`,
    `second writer's events     ${s.remoteEvents}`,
    `checks (daemon == Hat)     ${s.checks}; models compared ${s.modelsCompared}`,
    `acks verified in Hat       ${s.acksVerified}`,
    `violations                 ${s.violations.length}`,
    `problems                   ${s.problems.length}`,
    `duration                   ${Math.round(s.durationMs / 1000)} s`,
  ];
  for (const x of s.violations.slice(0, 20)) lines.push(`  violation: ${x}`);
  for (const x of s.problems.slice(0, 10)) lines.push(`  problem: ${x}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
const bad = results.reduce((n, s) => n + s.violations.length + s.problems.length, 0);
process.exit(bad > 0 ? 1 : 0);
