/** The direct texts of fast-texts.ts are exactly what the generic Python-format encoder writes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelChange, ModelMeta } from '../../src/backend/types.js';
import { changeData } from '../../src/controls/change-json.js';
import {
  fullStateText,
  markModelReply,
  modelChangeText,
  modelEntryText,
  modelReplyText,
  modelsDeltaText,
} from '../../src/controls/juggler/fast-texts.js';
import { notifyText, responseText, stateText } from '../../src/controls/juggler/messages.js';
import {
  EMPTY_STATE,
  type ModelEntry,
  type StateRoot,
} from '../../src/controls/juggler/model-view.js';
import { diffMembers } from '../../src/controls/juggler/patch.js';
import { pyDumps } from '../../src/controls/juggler/pyjson.js';
import { modelJson } from '../../src/controls/model-json.js';
import { Rng } from '../reliability/support.js';

/** Deterministic pseudo-random numbers (the campaigns' seeded source: no flaky seeds). */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** Strings with everything the Python format escapes: quotes, backslashes, controls, non-ASCII. */
const PIECES = [
  'a',
  'Model',
  '.',
  '"',
  '\\',
  '\n',
  '\t',
  '\u0001',
  '\u007f',
  'é',
  '模型',
  '😀',
  '/',
  ' ',
  '~',
];

function text(next: () => number, max = 6): string {
  let s = '';
  const n = Math.floor(next() * max);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

function meta(next: () => number, id?: number): ModelMeta {
  const m: ModelMeta = {
    instanceId:
      id ?? (next() < 0.2 ? 2 ** 40 + Math.floor(next() * 1e6) : 1 + Math.floor(next() * 1e6)),
    modelType: text(next),
    revision: 1 + Math.floor(next() * 1000),
    size: Math.floor(next() * 2 ** 34),
    sha256: next() < 0.9 ? 'ab'.repeat(32) : text(next),
    updated: next() < 0.8 ? '2026-12-06T01:02:03.456Z' : text(next),
  };
  if (next() < 0.3) m.revisionProvisional = true;
  if (next() < 0.3) m.contentType = text(next, 4);
  return m;
}

test('a model entry is written as pyDumps writes it, with and without every optional member', () => {
  const next = rng(7);
  for (let i = 0; i < 2000; i++) {
    const m = meta(next);
    const b64 = next() < 0.3 ? Buffer.from(text(next)).toString('base64') : undefined;
    const entry = modelJson(m, b64);
    assert.equal(modelEntryText(entry), pyDumps(entry), JSON.stringify(entry));
  }
});

test("a write's meta_only reply is written as the generic response text writes it", () => {
  const next = rng(9);
  const acks = [undefined, 'committed', 'registered', 'queued', 'persisted'];
  for (let i = 0; i < 2000; i++) {
    const m = meta(next);
    const ack = next() < 0.1 ? text(next) : acks[Math.floor(next() * acks.length)];
    const plain: Record<string, unknown> = { ...modelJson(m) };
    if (ack !== undefined) plain.ack = ack;
    const id = Math.floor(next() * 2 ** 40);
    const generic = pyDumps({ type: 'response', id, data: plain, success: true });
    assert.equal(responseText(id, true, markModelReply({ ...plain })), generic);
    assert.equal(modelReplyText({ ...plain }), null); // not marked: the generic path
  }
  // A failure with a marked value is written generically (code, success false).
  const r = markModelReply({ ...modelJson(meta(next)), ack: 'committed' });
  assert.equal(
    responseText(3, false, r, 'invalid'),
    pyDumps({ type: 'response', id: 3, data: r, success: false, code: 'invalid' }),
  );
  assert.equal(
    responseText(4, false, r),
    pyDumps({ type: 'response', id: 4, data: r, success: false }),
  );
});

test('a model_change notification is written as notifyText(changeData) writes it', () => {
  const next = rng(8);
  const kinds: ModelChange['change'][] = ['created', 'updated', 'deleted'];
  const origins: ModelChange['origin'][] = ['local', 'remote'];
  for (let i = 0; i < 2000; i++) {
    const m = meta(next);
    const change = kinds[Math.floor(next() * 3)] as ModelChange['change'];
    const c: ModelChange = {
      change,
      instanceId: m.instanceId,
      modelType: m.modelType,
      revision: m.revision,
      origin: origins[Math.floor(next() * 2)] as ModelChange['origin'],
      ...(change !== 'deleted' ? { meta: m } : {}),
      ...(next() < 0.3 ? { revisionProvisional: true as const } : {}),
    };
    assert.equal(modelChangeText(c), notifyText('model_change', changeData(c)));
  }
});

test('a step of the model view is written as stateText(diffMembers) writes it', () => {
  const next = rng(9);
  let models: Record<string, ModelEntry> = {};
  let nonEmpty = 0;
  for (let step = 0; step < 400; step++) {
    const changed = new Set<number>();
    const nextModels: Record<string, ModelEntry> = { ...models };
    const n = Math.floor(next() * 6);
    for (let i = 0; i < n; i++) {
      const id = next() < 0.1 ? 2 ** 40 + Math.floor(next() * 4) : 1 + Math.floor(next() * 40);
      changed.add(id);
      const key = String(id);
      const r = next();
      if (r < 0.25) delete nextModels[key];
      // The same entry again (a change that left the state as it was) or a new one.
      else if (r < 0.35 && models[key] !== undefined) nextModels[key] = models[key];
      else nextModels[key] = modelJson(meta(next, id), next() < 0.2 ? 'AAEC' : undefined);
    }
    const ordered: Record<string, ModelEntry> = {};
    for (const k of Object.keys(nextModels).sort((a, b) => Number(a) - Number(b)))
      ordered[k] = nextModels[k] as ModelEntry;
    const keys = [...changed].sort((a, b) => a - b).map(String);
    const ops = diffMembers('/models', models, ordered, keys);
    const expected = ops.length === 0 ? null : stateText(ops);
    if (expected !== null) nonEmpty++;
    assert.equal(modelsDeltaText({ from: models, to: ordered, keys }), expected, `step ${step}`);
    models = ordered;
  }
  assert.ok(nonEmpty > 300, `steps with a diff: ${nonEmpty}`);
});

test('a first state (the whole root) is written as stateText(replace the root) writes it', () => {
  const next = rng(10);
  const full = (root: StateRoot) => stateText([{ op: 'replace', path: '', value: root }]);
  assert.equal(fullStateText(EMPTY_STATE), full(EMPTY_STATE));
  for (let i = 0; i < 200; i++) {
    const models: Record<string, ModelEntry> = {};
    const n = Math.floor(next() * 30);
    for (let k = 0; k < n; k++) {
      const id = next() < 0.1 ? 2 ** 40 + k : 1 + Math.floor(next() * 1000);
      models[String(id)] = modelJson(meta(next, id), next() < 0.2 ? 'AAEC' : undefined);
    }
    let root = { models, actions: {} } as StateRoot;
    if (next() < 0.5) {
      const redundancy = { role: 'standby', group: text(next), active: false, event_server: null };
      root = { ...root, redundancy } as StateRoot;
    }
    assert.equal(fullStateText(root), full(root));
  }
});

test('large states and steps (texts joined a chunk at a time) are written as stateText writes them', () => {
  const next = rng(12);
  for (const n of [1023, 1024, 1025, 2048, 3001]) {
    const models: Record<string, ModelEntry> = {};
    for (let id = 1; id <= n; id++) models[String(id)] = modelJson(meta(next, id));
    const root = { models, actions: {} } as StateRoot;
    assert.equal(
      fullStateText(root),
      stateText([{ op: 'replace', path: '', value: root }]),
      `${n} models`,
    );
    const keys = Object.keys(models);
    const delta = { from: {}, to: models, keys };
    assert.equal(modelsDeltaText(delta), stateText(diffMembers('/models', {}, models, keys)));
  }
});
