/**
 * Usage errors that say how to fix them: "unknown option --tpye; did you mean --type?" instead of
 * Node's `parseArgs` advice about `--`, and the same for mistyped commands. Unlike the config's
 * suggestions (`common/suggest.ts`), an unambiguous prefix counts (`--expect` → `--expect-revision`).
 */
import { editDistance } from '../common/suggest.js';

/**
 * The candidate closest to `word`: a unique one that starts with it (`--expect` → `--expect-revision`),
 * else the nearest within an edit distance of 2 (1 for short words); null when nothing is close.
 */
export function closest(word: string, candidates: readonly string[]): string | null {
  const prefixed = candidates.filter((c) => c.startsWith(word) && c !== word);
  if (word.length >= 3 && prefixed.length === 1) return prefixed[0] as string;
  const limit = word.length <= 4 ? 1 : 2;
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const dist = editDistance(word, c);
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}

interface ParseArgsError {
  code?: unknown;
  message: string;
}

/**
 * Rewrites a `node:util` `parseArgs` error as a message that says how to fix the command line;
 * `options` are the long option names the command accepts (without dashes). Other errors keep
 * their message.
 */
export function parseArgsMessage(err: unknown, options: readonly string[]): string {
  const e = err as ParseArgsError;
  const message = e instanceof Error ? e.message : String(err);
  if (e?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /Unknown option '([^']+)'/.exec(message)?.[1] ?? message;
    const longs = options.map((o) => `--${o}`);
    const hint = option.startsWith('--') ? closest(option, longs) : null;
    if (hint !== null) return `unknown option ${option}; did you mean ${hint}?`;
    return `unknown option ${option} (options: ${longs.join(', ')})`;
  }
  if (e?.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const missing = /Option '(-\S+)(?:, (-\S+))? <value>' argument missing/.exec(message);
    if (missing !== null) return `option ${missing[2] ?? missing[1]} needs a value`;
    const noValue = /Option '(-\S+)(?:, (-\S+))?' does not take an argument/.exec(message);
    if (noValue !== null) return `option ${noValue[2] ?? noValue[1]} takes no value`;
  }
  return message;
}
