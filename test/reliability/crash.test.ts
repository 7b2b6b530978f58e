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
import { assertCleanCrash } from './crash-assert.js';
import { runCrashCampaign } from './crash-campaign.js';
import { canAimAtSyscalls } from './kill-points.js';

const KILLS = Number(process.env.AIMM_CRASH_KILLS ?? 12);
const T = { timeout: 120_000 };

describe('crash campaign (bounded)', () => {
  test('sqlite backend: kills at random, inside commits and during startup', T, async () => {
    const s = await runCrashCampaign({ backend: 'sqlite', kills: KILLS, schedule: 'round-robin' });
    assertCleanCrash(s, KILLS, ['random', 'startup', ...(canAimAtSyscalls ? ['commit'] : [])], {
      checkedAfterRunningKills: true,
    });
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
