/**
 * A bounded slice of the crash campaign against the event backend (the Hat test peer hosted here
 * survives the kills): at every kill point in turn — register batches before they are handled,
 * after Hat registered them, after the response left; catch-up after a restart; snapshot writes;
 * startup; random — with and without a snapshot. Fails on any lost or bent acknowledged write.
 */
import { describe, test } from 'node:test';
import { assertCleanCrash } from './crash-assert.js';
import { runCrashCampaign } from './crash-campaign.js';
import { canAimAtSyscalls } from './kill-points.js';

const KILLS = Number(process.env.AIMM_CRASH_KILLS ?? 12);
// A hang guard, not a timing: ≈ 55 s alone, over 120 s seen on a loaded 2-core machine.
const T = { timeout: 300_000 };
const POINTS = [
  'random',
  'register-dropped',
  'register-landed',
  'register-response',
  'catch-up',
  'startup',
];

describe('crash campaign, event backend (bounded)', () => {
  test('without snapshot', T, async () => {
    const s = await runCrashCampaign({
      backend: 'event',
      kills: KILLS,
      schedule: 'round-robin',
      catchUp: 'server',
    });
    assertCleanCrash(s, KILLS, POINTS);
  });

  test('with a snapshot', T, async () => {
    const s = await runCrashCampaign({
      backend: 'event',
      snapshot: true,
      kills: KILLS,
      schedule: 'round-robin',
      catchUp: 'auto',
    });
    assertCleanCrash(s, KILLS, [...POINTS, ...(canAimAtSyscalls ? ['snapshot'] : [])]);
  });
});
