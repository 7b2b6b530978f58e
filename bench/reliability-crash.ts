/**
 * Long run of the crash campaign (test/reliability/crash-campaign.ts).
 *
 *   node dist/bench/reliability-crash.js --kills 1000 [--backend sqlite|event|event+snapshot|all]
 *                                        [--seed N] [--quiet]
 *
 * With `--backend all` (the default) the kills are split over the sqlite backend, the event
 * backend and the event backend with a snapshot. Prints progress lines, then one summary per
 * backend and a total; exits 1 on any violation or problem (a lost acknowledged write, a crash).
 */
import {
  type CrashCampaignOptions,
  type CrashSummary,
  runCrashCampaign,
} from '../test/reliability/crash-campaign.js';
import {
  cliArg as arg,
  killChildrenOnSignal,
  progressLog as log,
  randomSeed,
} from '../test/reliability/support.js';

const kills = Number(arg('kills', '1000'));
const which = arg('backend', 'all');
const seed = Number(arg('seed', String(randomSeed())));
killChildrenOnSignal();

const variants: { name: string; opts: Omit<CrashCampaignOptions, 'kills'>; share: number }[] = [
  { name: 'sqlite', opts: { backend: 'sqlite' }, share: 0.4 },
  { name: 'event', opts: { backend: 'event' }, share: 0.3 },
  { name: 'event+snapshot', opts: { backend: 'event', snapshot: true }, share: 0.3 },
];
const chosen = which === 'all' ? variants : variants.filter((v) => v.name === which);
if (chosen.length === 0) {
  process.stderr.write(`unknown --backend ${which}\n`);
  process.exit(2);
}

const results: CrashSummary[] = [];
const total = chosen.reduce((n, v) => n + v.share, 0);
let left = kills;
for (const [i, v] of chosen.entries()) {
  const n = i === chosen.length - 1 ? left : Math.round((kills * v.share) / total);
  left -= n;
  log(`crash campaign: ${v.name}, ${n} kills, seed ${seed + i}`);
  const s = await runCrashCampaign({ ...v.opts, kills: n, seed: seed + i, log });
  results.push(s);
  printSummary(s);
}

function printSummary(s: CrashSummary): void {
  const lines = [
    `== crash campaign: ${s.backend} (seed ${s.seed}) ==`,
    `kills                ${s.kills}  ${JSON.stringify(s.killsByPoint)}`,
    `aimed kills missed   ${JSON.stringify(s.missedAims)} (the moment did not come; killed elsewhere)`,
    `kills inside syscall ${JSON.stringify(s.syscallsHit)}`,
    `restarts             ${s.restarts} (graceful stops ${s.gracefulStops}, epochs ${s.epochs})`,
    `writes attempted     ${s.attempts}`,
    `acknowledged writes  ${s.acked}  ${JSON.stringify(s.ackedByOp)}`,
    `uncertain writes     ${s.uncertain} (landed ${s.uncertainLanded})`,
    `mean batch           ${s.meanBatch ?? '-'} writes per ${s.backend.startsWith('event') ? 'register request' : 'SQLite commit'} (clean runs)`,
    `checks after restart ${s.checks}: ${s.modelsChecked} models read back, ${s.idsChecked} id states verified`,
    `violations           ${s.violations.length}`,
    `problems             ${s.problems.length}`,
    `duration             ${Math.round(s.durationMs / 1000)} s`,
  ];
  for (const v of s.violations.slice(0, 20))
    lines.push(`  violation ${v.kind} id ${v.id}: ${v.detail}`);
  for (const p of s.problems.slice(0, 10)) lines.push(`  problem: ${p}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const sum = (f: (s: CrashSummary) => number) => results.reduce((n, s) => n + f(s), 0);
const lost = sum((s) => s.violations.length);
const problems = sum((s) => s.problems.length);
process.stdout.write(
  `== total: ${sum((s) => s.kills)} kills, ${sum((s) => s.acked)} acknowledged writes, ` +
    `${sum((s) => s.idsChecked)} id states verified after restarts, ${lost} violations, ${problems} problems ==\n`,
);
process.exit(lost > 0 || problems > 0 ? 1 : 0);
