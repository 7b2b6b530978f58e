/**
 * A bounded slice of the bad-input campaign against the daemon (the long run:
 * bench/reliability-bad-input.ts): broken config files through check-config and serve, fuzz
 * Juggler connections beside a canary client, malformed model events registered in Hat, garbage
 * on the daemon's Hat connection. Fails on a wrong verdict, a crash, a canary that notices, a
 * stored fuzz model, a lost acknowledged write.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runBadInputCampaign, type Target } from './bad-input.js';

const SCALE = Number(process.env.AIMM_BAD_INPUT_SCALE ?? 1);
const T = { timeout: 120_000 };

async function slice(target: Target, n: number): Promise<void> {
  const s = await runBadInputCampaign({ counts: { [target]: n * SCALE } });
  const r = s.results[0];
  assert.ok(r !== undefined);
  assert.deepEqual(r.failures, [], JSON.stringify(r, null, 1).slice(0, 6000));
  assert.ok(r.inputs >= n * SCALE, JSON.stringify(r));
}

describe('bad-input campaign against the daemon (bounded)', () => {
  test('config files through check-config and serve', T, () => slice('config-cli', 12));
  test('Juggler: bad frames and requests beside a canary client', T, () =>
    slice('juggler-wire', 300),
  );
  test('Hat: malformed model events from another writer', T, () => slice('events-wire', 30));
  test('Hat: garbage on the daemon connection', T, () => slice('chatter-wire', 20));
});
