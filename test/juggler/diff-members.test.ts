/** The state diff restricted to changed models (server flushes) equals the full diff. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diff, diffMembers } from '../../src/controls/juggler/patch.js';
import { Rng } from '../reliability/support.js';

/** Deterministic pseudo-random numbers (the campaigns' seeded source: no flaky seeds). */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

test('diffMembers over the changed keys gives exactly what diff gives', () => {
  const next = rng(11);
  let models: Record<string, unknown> = {};
  for (let step = 0; step < 300; step++) {
    const changed = new Set<number>();
    const nextModels: Record<string, unknown> = { ...models };
    const n = 1 + Math.floor(next() * 6);
    for (let i = 0; i < n; i++) {
      // Ids up to 60 (array-index keys) and a few huge ones (string keys, insertion order).
      const id = next() < 0.1 ? 2 ** 40 + Math.floor(next() * 4) : Math.floor(next() * 60);
      changed.add(id);
      const key = String(id);
      if (next() < 0.3) delete nextModels[key];
      else nextModels[key] = { model_type: 't', revision: step, sha256: next() < 0.5 ? 'a' : 'b' };
    }
    // The view builds each snapshot in ascending id order.
    const ordered: Record<string, unknown> = {};
    for (const k of Object.keys(nextModels).sort((a, b) => Number(a) - Number(b)))
      ordered[k] = nextModels[k];
    const keys = [...changed].sort((a, b) => a - b).map(String);
    const full = diff({ models, actions: {} }, { models: ordered, actions: {} });
    assert.deepEqual(diffMembers('/models', models, ordered, keys), full, `step ${step}`);
    models = ordered;
  }
});
