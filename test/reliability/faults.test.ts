/**
 * A bounded slice of the Hat fault campaign (the long run: bench/reliability-faults.ts): every
 * fault in turn, twice, with and without a snapshot. Fails on a lost acknowledged write, a daemon
 * that serves something other than what Hat holds, a request left without an answer, a dropped
 * client connection, readiness or metrics that do not follow Hat, a crash or a secret in the logs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FAULTS, type FaultSummary, runFaultCampaign } from './fault-campaign.js';

const ROUNDS = Number(process.env.AIMM_FAULT_ROUNDS ?? 2);
const T = { timeout: 120_000 };

function assertClean(s: FaultSummary): void {
  const detail = JSON.stringify(s, null, 1).slice(0, 6000);
  assert.deepEqual(s.violations, [], detail);
  assert.deepEqual(s.problems, [], detail);
  assert.equal(s.episodes, FAULTS.length * ROUNDS, detail);
  for (const f of FAULTS) assert.equal(s.faults[f], ROUNDS, detail);
  // The faults really happened, and were seen.
  assert.ok(s.outagesSeen >= 2 * ROUNDS, detail); // stop-start and stall
  assert.ok(s.rebuilds >= 2 * ROUNDS, detail); // reset and reset-live
  assert.ok((s.errors.unavailable ?? 0) > 0, detail);
  assert.ok((s.errors['register refused'] ?? 0) > 0, detail);
  assert.ok(s.remoteEvents > 0, detail);
  assert.ok(s.acked > 100 && s.acksVerified === s.acked, detail);
}

describe('Hat fault campaign (bounded)', () => {
  test('event backend without snapshot', T, async () => {
    assertClean(await runFaultCampaign({ episodes: FAULTS.length * ROUNDS }));
  });

  test('event backend with a snapshot', T, async () => {
    assertClean(await runFaultCampaign({ episodes: FAULTS.length * ROUNDS, snapshot: true }));
  });
});
