/**
 * A flush's state messages (state-texts.ts over the model view's versions) are exactly what the
 * generic diff of the whole states gives, for every kind of session step: first state, the view's
 * last step, login, logout, a role change alone or with model changes, and flushes skipped while
 * no session is ready. Each session's state, patched by what it was sent, equals the models.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Subject } from 'rxjs';
import type { Backend, ModelChange, ModelMeta } from '../../src/backend/types.js';
import { applyPatch } from '../../src/client/patch.js';
import { fullStateText } from '../../src/controls/juggler/fast-texts.js';
import { stateText } from '../../src/controls/juggler/messages.js';
import {
  EMPTY_STATE,
  type ModelsVersion,
  ModelView,
  type StateRoot,
} from '../../src/controls/juggler/model-view.js';
import { diff } from '../../src/controls/juggler/patch.js';
import {
  type PushedState,
  type SentState,
  StateTexts,
} from '../../src/controls/juggler/state-texts.js';
import { modelJson } from '../../src/controls/model-json.js';
import { Rng } from '../reliability/support.js';

/** A backend whose change stream the test drives (meta-only changes: no reads needed). */
function drivenBackend(): { backend: Backend; changes: Subject<ModelChange> } {
  const changes = new Subject<ModelChange>();
  const backend = {
    changes$: changes.asObservable(),
    getModels: async () => [],
    getModel: async () => null,
  } as unknown as Backend;
  return { backend, changes };
}

function meta(id: number, revision: number, r: Rng): ModelMeta {
  return {
    instanceId: id,
    modelType: r.next() < 0.5 ? 'a.Model' : 'b.Model',
    revision,
    size: r.int(0, 99),
    sha256: r.next() < 0.5 ? 'aa' : 'bb',
    updated: `2026-12-06T00:00:0${r.int(0, 9)}Z`,
  };
}

function created(m: ModelMeta): ModelChange {
  return {
    change: 'created',
    instanceId: m.instanceId,
    modelType: m.modelType,
    revision: m.revision,
    origin: 'local',
    meta: m,
  };
}

/** What the state was before versions: the whole root, ids ascending. */
function plainRoot(models: Map<number, ModelMeta>, redundancy: object | undefined): StateRoot {
  const out: Record<string, unknown> = {};
  for (const id of [...models.keys()].sort((a, b) => a - b))
    out[String(id)] = modelJson(models.get(id) as ModelMeta);
  return (
    redundancy === undefined
      ? { models: out, actions: {} }
      : { models: out, actions: {}, redundancy }
  ) as StateRoot;
}

interface FakeSession {
  authorized: boolean;
  lastSent: SentState | undefined;
  /** The oracle's view of what the session holds. */
  expected: StateRoot | undefined;
  /** The session's state patched by what it was sent. */
  state: unknown;
}

test('every flush text equals the generic diff of the whole states, whatever the sessions did', async () => {
  const r = new Rng(24);
  const { backend, changes } = drivenBackend();
  const view = new ModelView(backend, false, pino({ level: 'silent' }), {
    change: () => {},
    dirty: () => {},
  });
  await view.start();
  const models = new Map<number, ModelMeta>();
  const revisions = new Map<number, number>();
  const sessions: FakeSession[] = [];
  let redundancy: Readonly<Record<string, unknown>> | undefined;
  const last: { pushed: PushedState | null } = { pushed: null };
  let nextId = 1;
  const kinds = new Map<string, number>();
  const count = (k: string) => kinds.set(k, (kinds.get(k) ?? 0) + 1);

  for (let step = 0; step < 800; step++) {
    // Model changes (none in some steps: a flush for a login or a role change alone).
    const n = r.next() < 0.2 ? 0 : r.int(1, 5);
    for (let i = 0; i < n; i++) {
      const roll = r.next();
      if (roll < 0.4 || models.size === 0) {
        // A new id; now and then one too large to be an array index.
        const id = r.next() < 0.05 ? 2 ** 33 + nextId++ : nextId++;
        revisions.set(id, 1);
        const m = meta(id, 1, r);
        models.set(id, m);
        changes.next(created(m));
      } else {
        const ids = [...models.keys()];
        const id = r.pick(ids);
        const revision = (revisions.get(id) as number) + 1;
        revisions.set(id, revision);
        if (roll < 0.75) {
          const m = meta(id, revision, r);
          models.set(id, m);
          changes.next({
            change: 'updated',
            instanceId: id,
            modelType: m.modelType,
            revision,
            origin: 'remote',
            meta: m,
          });
        } else {
          const old = models.get(id) as ModelMeta;
          models.delete(id);
          changes.next({
            change: 'deleted',
            instanceId: id,
            modelType: old.modelType,
            revision,
            origin: 'local',
          });
        }
      }
    }
    // Sessions come, go, log in and out; the role changes now and then.
    if (sessions.length < 4 && r.next() < 0.15)
      sessions.push({
        authorized: r.next() < 0.7,
        lastSent: undefined,
        expected: undefined,
        state: null,
      });
    if (r.next() < 0.1 && sessions.length > 0) sessions.splice(r.int(0, sessions.length - 1), 1);
    for (const s of sessions) if (r.next() < 0.05) s.authorized = !s.authorized;
    if (r.next() < 0.05)
      redundancy =
        r.next() < 0.2 ? undefined : { role: r.next() < 0.5 ? 'active' : 'standby', step };
    // A flush: none while no session is ready (the view keeps collecting what changed).
    if (sessions.length === 0) {
      count('skipped');
      continue;
    }
    const version = view.snapshot();
    if (last.pushed?.version !== version || last.pushed.redundancy !== redundancy)
      last.pushed = { version, redundancy };
    const pushed = last.pushed;
    const texts = new StateTexts(view);
    const now = plainRoot(models, redundancy);
    for (const s of sessions) {
      const target: SentState = s.authorized ? pushed : 'empty';
      const want = s.authorized ? now : EMPTY_STATE;
      const text = texts.get(s.lastSent, target);
      let oracle: string | null;
      if (s.expected === undefined) {
        oracle = fullStateText(want);
        count('first');
      } else {
        const ops = diff(s.expected, want);
        oracle = ops.length === 0 ? null : stateText(ops);
        if (s.lastSent === target) count('same');
        else if (s.lastSent === 'empty' || target === 'empty') count('login/logout');
        else if (s.lastSent?.redundancy !== target.redundancy) count('role');
        else count('step');
      }
      assert.equal(text, oracle, `step ${step}`);
      if (text !== null) {
        const msg = JSON.parse(text) as { diff: Parameters<typeof applyPatch>[1] };
        s.state = applyPatch(s.state, msg.diff);
      }
      assert.deepEqual(s.state, JSON.parse(JSON.stringify(want)), `step ${step}: patched state`);
      s.lastSent = target;
      s.expected = want;
    }
  }
  // Every kind of step was exercised.
  for (const k of ['first', 'step', 'same', 'login/logout', 'role', 'skipped'])
    assert.ok((kinds.get(k) ?? 0) >= 5, `${k}: ${kinds.get(k)}`);
  view.close();
});

test('a version older than the one before the current is gone: its models throw, a session on it gets the whole state', async () => {
  const { backend, changes } = drivenBackend();
  const view = new ModelView(backend, false, pino({ level: 'silent' }), {
    change: () => {},
    dirty: () => {},
  });
  await view.start();
  const versions: ModelsVersion[] = [];
  const r = new Rng(1);
  for (let id = 1; id <= 3; id++) {
    changes.next(created(meta(id, 1, r)));
    versions.push(view.snapshot());
  }
  assert.deepEqual(Object.keys(view.models(versions[2] as ModelsVersion)), ['1', '2', '3']);
  assert.deepEqual(Object.keys(view.models(versions[1] as ModelsVersion)), ['1', '2']);
  assert.throws(() => view.models(versions[0] as ModelsVersion), /older than the previous one/);
  // A session somehow left on that version gets the whole state instead of a flush failing.
  const texts = new StateTexts(view);
  const now: PushedState = { version: versions[2] as ModelsVersion, redundancy: undefined };
  const old: PushedState = { version: versions[0] as ModelsVersion, redundancy: undefined };
  assert.equal(texts.get(old, now), texts.get(undefined, now));
  view.close();
});
