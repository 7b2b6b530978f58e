/**
 * A bounded slice of the bad-input campaign, in process (the long run:
 * bench/reliability-bad-input.ts): malformed configs against every schema and daemon rule,
 * Juggler requests against the request oracle, model events against the reference classifier,
 * chatter frames and eventer messages into the decoders. Fails on any wrong verdict or crash.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runBadInputCampaign } from './bad-input.js';

const SCALE = Number(process.env.AIMM_BAD_INPUT_SCALE ?? 1);
const T = { timeout: 120_000 };

describe('bad-input campaign, in process (bounded)', () => {
  test('configs, Juggler requests, model events, chatter frames', T, async () => {
    const s = await runBadInputCampaign({
      counts: {
        config: 1500 * SCALE,
        juggler: 3000 * SCALE,
        events: 20_000 * SCALE,
        chatter: 8000 * SCALE,
      },
    });
    const detail = JSON.stringify(s, null, 1).slice(0, 8000);
    for (const r of s.results) assert.deepEqual(r.failures, [], `${r.target}: ${detail}`);
    assert.equal(s.results.length, 4);
    assert.ok(s.inputs > 30_000 * SCALE, detail);
    // Every schema and daemon rule was broken at least once and reported.
    const config = s.results.find((r) => r.target === 'config');
    for (const rule of [
      'type',
      'enum',
      'minimum',
      'maximum',
      'exclusiveMinimum',
      'minLength',
      'pattern',
      'minItems',
      'required',
      'additionalProperties',
      'oneOf',
      'module',
      'loopback',
      'loopback_without_users',
      'unique',
      'exclusive',
      'file',
    ])
      assert.ok((config?.detail[`rule ${rule}`] ?? 0) > 0, `rule ${rule} never hit: ${detail}`);
    // Every verdict of the request oracle and the event classifier occurred.
    const juggler = s.results.find((r) => r.target === 'juggler requests');
    for (const k of [
      'invalid',
      'unknown_name',
      'unauthorized',
      'not_supported',
      'not_found',
      'conflict',
      'login',
      'ok',
    ])
      assert.ok((juggler?.detail[k] ?? 0) > 0, `juggler ${k}: ${detail}`);
    const events = s.results.find((r) => r.target === 'model events');
    for (const k of [
      'model',
      'tombstone',
      'bad_type',
      'bad_id',
      'binary_payload',
      'bad_json',
      'not_aimm_shaped',
      'bad_base64',
    ])
      assert.ok((events?.detail[k] ?? 0) > 0, `events ${k}: ${detail}`);
  });
});
