/** The test peer's optional register cost model (register-cost.ts). */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { connect } from '../../src/hat/eventer/client.js';
import { startHatPeer } from './hat-peer.js';
import { REALISTIC_REGISTER_COST, registerCostMs, spinUntil } from './register-cost.js';

test('registerCostMs adds the per-request, per-event and per-KiB parts', () => {
  const cost = { perRequestUs: 100, perEventUs: 10, perKiBUs: 4 };
  assert.equal(registerCostMs(cost, 0, 0), 0.1);
  assert.equal(registerCostMs(cost, 3, 2048), (100 + 30 + 8) / 1000);
  // The calibration of the docs: one 1 KiB model (≈ 1.5 KB request) ≈ 360 µs, 64 of them ≈ 7.3 ms.
  assert.ok(Math.abs(registerCostMs(REALISTIC_REGISTER_COST, 1, 1536) - 0.36) < 0.001);
  assert.ok(Math.abs(registerCostMs(REALISTIC_REGISTER_COST, 64, 64 * 1536) - 7.29) < 0.01);
});

test('spinUntil returns no earlier than its deadline', () => {
  const t0 = performance.now();
  spinUntil(t0, 2);
  assert.ok(performance.now() >= t0 + 2);
});

test('a peer with a register cost still registers and answers every request', async () => {
  const peer = await startHatPeer({ registerCost: REALISTIC_REGISTER_COST, engineEvents: false });
  try {
    const client = await connect(
      { host: peer.host, port: peer.port },
      { clientName: 'cost', subscriptions: [] },
    );
    try {
      for (let i = 0; i < 3; i++) {
        const events = await client.register([
          { type: ['a', String(i)], sourceTimestamp: null, payload: { kind: 'json', text: '1' } },
        ]);
        assert.equal(events?.length, 1);
      }
    } finally {
      await client.close();
    }
  } finally {
    await peer.close();
  }
});
