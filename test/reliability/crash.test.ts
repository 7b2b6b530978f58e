/**
 * A bounded slice of the crash campaign (the long run: bench/reliability-crash.ts): the daemon is
 * SIGKILLed at every kill point in turn while a writer process writes through Juggler, and after
 * every restart every acknowledged write must be there. Fails on any lost or bent acknowledged
 * write, any daemon that dies on its own, any secret in its output.
 *
 * Also the campaign's own proof that it can fail: a backend that forgets everything on restart
 * must be caught.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CrashSummary, runCrashCampaign } from './crash-campaign.js';
import { canAimAtSyscalls } from './kill-points.js';

const KILLS = Number(process.env.AIMM_CRASH_KILLS ?? 12);
const T = { timeout: 120_000 };

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
  assert.ok(
    s.checks >= s.kills - (s.killsByPoint.startup ?? 0) - (s.killsByPoint['catch-up'] ?? 0),
  );
  assert.ok(s.idsChecked > 0, detail);
}

describe('crash campaign (bounded)', () => {
  test('sqlite backend: kills at random, inside commits and during startup', T, async () => {
    const s = await runCrashCampaign({ backend: 'sqlite', kills: KILLS, schedule: 'round-robin' });
    assertClean(s, ['random', 'startup', ...(canAimAtSyscalls ? ['commit'] : [])]);
  });

  test('the campaign catches a backend that loses acknowledged writes', T, async () => {
    const s = await runCrashCampaign({
      backend: 'memory',
      kills: 1,
      weights: { startup: 0, commit: 0 },
    });
    assert.ok(
      s.violations.some((v) => v.kind === 'lost'),
      JSON.stringify(s.violations.slice(0, 3)),
    );
  });
});
