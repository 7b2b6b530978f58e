/**
 * Capped, jittered exponential backoff for reconnecting: attempt n waits
 * `min(max, min * 2^n)` scaled by a random factor in [0.5, 1) ("equal jitter"), so many daemons
 * losing one Hat server do not all come back at the same instant.
 */
export function backoffDelay(
  attempt: number,
  minDelayMs: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(exp * (0.5 + random() * 0.5)));
}
