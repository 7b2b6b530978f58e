/**
 * The bad-input campaign: everything a peer or an operator can get wrong, thrown at aimm-store —
 * in process for volume (bad-input/in-process.ts) and end to end against the daemon
 * (bad-input/wire.ts). Each target has an oracle (what the docs promise for that input), so a
 * wrong verdict fails as surely as a crash. Targets and what they send:
 *
 * | target          | inputs                                                                       |
 * | --------------- | ---------------------------------------------------------------------------- |
 * | `config`        | configs broken against every schema rule and daemon rule; random values; texts |
 * | `config-cli`    | the same as files through `check-config` and `serve`; unreadable files        |
 * | `juggler`       | requests into the control's request path, judged by a request oracle         |
 * | `juggler-wire`  | fuzz connections to the daemon beside a canary client                         |
 * | `events`        | model events into the decoder, judged by a reference classifier               |
 * | `events-wire`   | malformed model events registered in Hat while the daemon runs                |
 * | `chatter`       | random and mutated chatter frames and eventer messages into the decoders       |
 * | `chatter-wire`  | garbage injected into the daemon's Hat connection                             |
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  fuzzChatter,
  fuzzConfig,
  fuzzJugglerRequests,
  fuzzModelEvents,
  type TargetResult,
} from './bad-input/in-process.js';
import { chatterWire, configCli, hatEventsWire, jugglerWire } from './bad-input/wire.js';
import { randomSeed, tempDir } from './support.js';

export type Target =
  | 'config'
  | 'config-cli'
  | 'juggler'
  | 'juggler-wire'
  | 'events'
  | 'events-wire'
  | 'chatter'
  | 'chatter-wire';

export const TARGETS: readonly Target[] = [
  'config',
  'config-cli',
  'juggler',
  'juggler-wire',
  'events',
  'events-wire',
  'chatter',
  'chatter-wire',
];

export interface BadInputOptions {
  /** Runs per target (property runs, CLI cases, fuzz connections, event batches, injections). */
  counts: Partial<Record<Target, number>>;
  seed?: number;
  log?: (line: string) => void;
}

export interface BadInputSummary {
  seed: number;
  results: TargetResult[];
  inputs: number;
  failures: number;
  durationMs: number;
}

export async function runBadInputCampaign(opts: BadInputOptions): Promise<BadInputSummary> {
  const t0 = Date.now();
  const seed = opts.seed ?? randomSeed();
  const say = opts.log ?? (() => {});
  const results: TargetResult[] = [];
  const { dir, cleanup } = tempDir('aimm-badinput-');
  try {
    for (const [i, target] of TARGETS.entries()) {
      const n = opts.counts[target];
      if (n === undefined || n <= 0) continue;
      const s = seed + i * 1000;
      const sub = join(dir, target);
      mkdirSync(sub, { recursive: true });
      say(`bad input: ${target}, ${n} runs, seed ${s}`);
      const r = await run(target, n, s, sub);
      say(
        `bad input: ${target}: ${r.inputs} inputs, ${r.failures.length} failures, ${Math.round(r.durationMs / 1000)} s`,
      );
      for (const f of r.failures.slice(0, 3))
        say(`bad input: ${target}: failure: ${f.slice(0, 4000)}`);
      results.push(r);
    }
  } finally {
    cleanup();
  }
  return {
    seed,
    results,
    inputs: results.reduce((n, r) => n + r.inputs, 0),
    failures: results.reduce((n, r) => n + r.failures.length, 0),
    durationMs: Date.now() - t0,
  };
}

function run(
  target: Target,
  n: number,
  seed: number,
  dir: string,
): Promise<TargetResult> | TargetResult {
  switch (target) {
    case 'config':
      return fuzzConfig(n, seed, dir);
    case 'config-cli':
      return configCli(n, seed, dir);
    case 'juggler':
      return fuzzJugglerRequests(n, seed);
    case 'juggler-wire':
      return jugglerWire(n, seed, dir);
    case 'events':
      return fuzzModelEvents(n, seed);
    case 'events-wire':
      return hatEventsWire(n, seed, dir);
    case 'chatter':
      return fuzzChatter(n, seed);
    case 'chatter-wire':
      return chatterWire(n, seed, dir);
  }
}
