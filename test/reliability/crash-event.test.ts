/**
 * A bounded slice of the crash campaign against the event backend (the Hat test peer hosted here
 * survives the kills): at every kill point in turn — register batches before they are handled,
 * after Hat registered them, after the response left; catch-up after a restart; snapshot writes;
 * startup; random — with and without a snapshot. Fails on any lost or bent acknowledged write.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CrashSummary, runCrashCampaign } from './crash-campaign.js';
import { canAimAtSyscalls } from './kill-points.js';

const KILLS = Number(process.env.AIMM_CRASH_KILLS ?? 12);
const T = { timeout: 120_000 };
const POINTS = [
  'random',
  'register-dropped',
  'register-landed',
  'register-response',
  'catch-up',
  'startup',
];

function assertClean(s: CrashSummary, points: string[]): void {
  const detail = JSON.stringify(
    { ...s, violations: s.violations.slice(0, 10), problems: s.problems.slice(0, 5) },
    null,
    1,
  );
  assert.deepEqual(s.violations, [], detail);
  assert.deepEqual(s.problems, [], detail);
  assert.equal(s.kills, KILLS, detail);
  for (const p of points) assert.ok((s.killsByPoint[p] ?? 0) > 0, `no kill at ${p}: ${detail}`);
  assert.ok(s.acked > 100, detail);
  assert.ok(s.idsChecked > 0, detail);
}

describe('crash campaign, event backend (bounded)', () => {
  test('without snapshot', T, async () => {
    const s = await runCrashCampaign({
      backend: 'event',
      kills: KILLS,
      schedule: 'round-robin',
      catchUp: 'server',
    });
    assertClean(s, POINTS);
  });

  test('with a snapshot', T, async () => {
    const s = await runCrashCampaign({
      backend: 'event',
      snapshot: true,
      kills: KILLS,
      schedule: 'round-robin',
      catchUp: 'auto',
    });
    assertClean(s, [...POINTS, ...(canAimAtSyscalls ? ['snapshot'] : [])]);
  });
});
