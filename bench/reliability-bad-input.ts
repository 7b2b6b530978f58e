/**
 * Long run of the bad-input campaign (test/reliability/bad-input.ts).
 *
 *   node dist/bench/reliability-bad-input.js [--scale N] [--seed N] [--targets a,b] [--quiet]
 *
 * `--scale 1` (the default) tries more than a million inputs: most in process (config
 * validation, the Juggler request path, the model event decoder, chatter and eventer decoders),
 * the rest end to end against the daemon. Prints a table per target; exits 1 on any failure.
 */
import { runBadInputCampaign, TARGETS, type Target } from '../test/reliability/bad-input.js';
import {
  cliArg as arg,
  killChildrenOnSignal,
  progressLog as log,
  randomSeed,
} from '../test/reliability/support.js';

const scale = Number(arg('scale', '1'));
const seed = Number(arg('seed', String(randomSeed())));
const targets = arg('targets', TARGETS.join(',')).split(',') as Target[];
killChildrenOnSignal();

const base: Record<Target, number> = {
  config: 60_000,
  'config-cli': 200,
  juggler: 100_000,
  'juggler-wire': 20_000,
  events: 300_000,
  'events-wire': 500,
  chatter: 150_000,
  'chatter-wire': 1000,
};
const counts = Object.fromEntries(
  targets.map((t) => [t, Math.max(1, Math.round(base[t] * scale))]),
);
const s = await runBadInputCampaign({
  counts,
  seed,
  log,
});
const lines = [
  `== bad-input campaign (seed ${s.seed}) ==`,
  '| target | runs | inputs | failures | seconds | detail |',
  '|---|---:|---:|---:|---:|---|',
];
for (const r of s.results)
  lines.push(
    `| ${r.target} | ${counts[TARGETS[s.results.indexOf(r)] as Target] ?? ''} | ${r.inputs} | ${r.failures.length} | ${Math.round(r.durationMs / 1000)} | ${JSON.stringify(r.detail)} |`,
  );
lines.push(
  `total: ${s.inputs} inputs, ${s.failures} failures, ${Math.round(s.durationMs / 1000)} s`,
);
for (const r of s.results)
  for (const f of r.failures.slice(0, 5))
    lines.push(`  failure (${r.target}): ${f.slice(0, 2000)}`);
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(s.failures > 0 ? 1 : 0);
