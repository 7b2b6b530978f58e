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

test('several register requests in flight are registered and answered in order (also with an answer delay)', async () => {
  for (const registerAnswerDelayMs of [0, 3]) {
    const peer = await startHatPeer({
      registerCost: REALISTIC_REGISTER_COST,
      registerAnswerDelayMs,
      engineEvents: false,
    });
    try {
      const client = await connect(
        { host: peer.host, port: peer.port },
        { clientName: 'order', subscriptions: [] },
      );
      try {
        const answered: number[] = [];
        const requests = Array.from({ length: 8 }, (_, i) =>
          client
            .register([
              {
                type: ['a', String(i)],
                sourceTimestamp: null,
                payload: { kind: 'json', text: '1' },
              },
            ])
            .then((events) => {
              answered.push(i);
              return events?.[0]?.id.session ?? -1;
            }),
        );
        const sessions = await Promise.all(requests);
        assert.deepEqual(answered, [0, 1, 2, 3, 4, 5, 6, 7], 'answered in send order');
        for (let i = 1; i < sessions.length; i++)
          assert.ok(
            (sessions[i] as number) > (sessions[i - 1] as number),
            'registered in send order',
          );
      } finally {
        await client.close();
      }
    } finally {
      await peer.close();
    }
  }
});
