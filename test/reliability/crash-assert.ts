/** What the bounded crash campaign tests (crash.test.ts, crash-event.test.ts) demand of a run. */
import assert from 'node:assert/strict';
import type { CrashSummary } from './crash-campaign.js';

/**
 * No violation or problem, exactly `kills` kills with at least one at each of `points`, enough
 * acknowledged writes and verified ids; with `checkedAfterRunningKills`, also a check after every
 * kill that left the daemon to restart (every kill but those at startup or catch-up).
 */
export function assertCleanCrash(
  s: CrashSummary,
  kills: number,
  points: string[],
  options: { checkedAfterRunningKills?: boolean } = {},
): void {
  const detail = JSON.stringify(
    { ...s, violations: s.violations.slice(0, 10), problems: s.problems.slice(0, 5) },
    null,
    1,
  );
  assert.deepEqual(s.violations, [], detail);
  assert.deepEqual(s.problems, [], detail);
  assert.equal(s.kills, kills, detail);
  for (const p of points) assert.ok((s.killsByPoint[p] ?? 0) > 0, `no kill at ${p}: ${detail}`);
  assert.ok(s.acked > 100, detail);
  if (options.checkedAfterRunningKills === true)
    assert.ok(
      s.checks >= s.kills - (s.killsByPoint.startup ?? 0) - (s.killsByPoint['catch-up'] ?? 0),
    );
  assert.ok(s.idsChecked > 0, detail);
}
