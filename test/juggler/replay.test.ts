/**
 * Replays every recorded AIMM session (../shared/juggler-vectors/) against our Juggler control:
 * each recorded client text is sent in order (0.7 segments as their own frames), paced by the
 * recording (scaled) and by the arrival of every server message recorded before it. Our answers
 * must match AIMM's: message types and order, response ids, success flags and data, state diffs
 * (strict: the same sequence of patch operations), pings, close codes, 0.7 segment boundaries,
 * and the exact texts wherever our design does not differ.
 *
 * Whitelisted deviations (README "Known deviations", docs/juggler-api.md): our state entries carry
 * metadata (revision, size, sha256, updated) next to AIMM's keys, stripped before comparing; we
 * send `model_change` notifications, ignored here; we push the state at login (g: compared
 * leniently, on the final state); `logout` succeeds and clears the state (h).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { applyPatch } from '../../src/client/patch.js';
import type { JugglerConf } from '../../src/controls/juggler/conf.js';
import { pyDumps } from '../../src/controls/juggler/pyjson.js';
import { ADMIN, type Harness, sleep, startJuggler, until } from './support/harness.js';
import { RawClient, type Received } from './support/raw-client.js';
import { loadRecordings, type Recording, type Step } from './support/vectors.js';

const SEGMENT = 65536;
const META_KEYS = ['revision', 'size', 'sha256', 'updated'];
const META_PATH = /^\/models\/\d+\/(revision|size|sha256|updated)$/;

type Msg = Record<string, unknown>;
type Expected =
  | { kind: 'message'; msg: Msg; text: string; segments: number[] }
  | { kind: 'ping' }
  | { kind: 'pong' };

/** Time scale per scenario: short ones at recorded speed, long idle ones compressed. */
function scaleOf(scenario: string): number {
  if (scenario === 'a2' || scenario === 'c') return 1;
  if (scenario === 'e') return 0.1;
  return 0.25;
}

/** What the server sent in a recording, as messages (0.7 segments joined). */
function expectedOf(rec: Recording, framing: '0.6' | '0.7'): Expected[] {
  const out: Expected[] = [];
  let parts: string[] = [];
  for (const s of rec.steps) {
    if (s.dir !== 's2c' || s.ws !== 'text' || s.text === undefined) continue;
    if (framing === '0.6') {
      out.push({ kind: 'message', msg: s.decoded as Msg, text: s.text, segments: [s.text.length] });
    } else if (s.prefix === '2') out.push({ kind: 'ping' });
    else if (s.prefix === '3') out.push({ kind: 'pong' });
    else if (s.prefix === '1') parts.push(s.text.slice(1));
    else {
      parts.push(s.text.slice(1));
      out.push({
        kind: 'message',
        msg: s.decoded as Msg,
        text: parts.join(''),
        segments: parts.map((p) => p.length),
      });
      parts = [];
    }
  }
  return out;
}

/** A client silent until after the server's first message needs fixed framing in 0.6. */
function silentFirst(rec: Recording): boolean {
  const first = rec.steps.find((s) => s.ws === 'text');
  return first?.dir === 's2c';
}

/** Maps recorded (AIMM-allocated) instance ids to ours, from add_instance responses. */
class IdMap {
  private readonly map = new Map<number, number>();
  learn(recorded: unknown, actual: unknown): void {
    if (typeof recorded === 'number' && typeof actual === 'number') this.map.set(recorded, actual);
  }
  id(n: number): number {
    return this.map.get(n) ?? n;
  }
  /** Rewrites ids in a message AIMM sent (responses, state diffs) to ours. */
  message(m: Msg): Msg {
    return this.walk(m, false) as Msg;
  }
  private walk(v: unknown, inModels: boolean): unknown {
    if (Array.isArray(v)) return v.map((x) => this.walk(x, false));
    if (typeof v !== 'object' || v === null) return v;
    const out: Msg = {};
    for (const [k, x] of Object.entries(v as Msg)) {
      const key = inModels ? String(this.id(Number(k))) : k;
      if (k === 'instance_id' && typeof x === 'number') out[key] = this.id(x);
      else if (k === 'path' && typeof x === 'string')
        out[key] = x.replace(/^\/models\/(\d+)/, (_, n) => `/models/${this.id(Number(n))}`);
      else out[key] = this.walk(x, k === 'models');
    }
    return out;
  }
  /** Rewrites ids in a client text. */
  text(t: string): string {
    return t.replace(/"instance_id": (\d+)/g, (_, n) => `"instance_id": ${this.id(Number(n))}`);
  }
}

function stripEntry(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || !('instance_id' in v)) return v;
  const e = { ...(v as Msg) };
  for (const k of META_KEYS) delete e[k];
  return e;
}

function stripState(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || !('models' in v)) return v;
  const s = v as { models: Record<string, unknown>; actions: unknown };
  return {
    models: Object.fromEntries(Object.entries(s.models).map(([k, e]) => [k, stripEntry(e)])),
    actions: s.actions,
  };
}

/** Our diff without the metadata we add (deviation: metadata in state). */
function stripDiff(diff: Msg[]): Msg[] {
  return diff
    .filter((op) => !META_PATH.test(String(op.path)))
    .map((op) => {
      if (!('value' in op)) return op;
      const path = String(op.path);
      const value =
        path === ''
          ? stripState(op.value)
          : /^\/models\/\d+$/.test(path)
            ? stripEntry(op.value)
            : op.value;
      return { ...op, value };
    });
}

interface Observed {
  rec: Recording;
  client: RawClient;
}

interface ReplayOptions {
  url: string;
  t0: number;
  scale: number;
  ids: IdMap;
  /** Every connection of the scenario so far (ids allocated on one are used on another). */
  peers: { client: RawClient; expected: Expected[] }[];
}

/** Plays one recorded connection's client side. */
async function play(rec: Recording, o: ReplayOptions): Promise<Observed> {
  const framing = rec.framing === 'mismatch' ? (rec.client_framing ?? '0.7') : rec.framing;
  await sleep(Math.max(0, o.t0 + rec.connection.opened_at_ms * o.scale - Date.now()));
  const client = await RawClient.open(o.url, framing, { answerPings: false });
  const opened = Date.now();
  const expected = expectedOf(rec, framing);
  o.peers.push({ client, expected });
  let s2cSeen = 0; // recorded server messages before the current step
  let group: Step[] = [];
  for (const step of rec.steps) {
    if (step.dir === 's2c') {
      if (step.ws === 'text' && (framing === '0.6' || step.prefix !== '1')) s2cSeen++;
      continue;
    }
    if (step.ws !== 'text' && step.ws !== 'close') continue;
    if (step.ws === 'text' && step.prefix === '1') {
      group.push(step);
      continue;
    }
    await sleep(Math.max(0, opened + step.t_ms * o.scale - Date.now()));
    await arrived(client, expected.slice(0, s2cSeen), rec.file);
    if (step.ws === 'close') {
      if (client.closeCode === null) void client.close(step.close_code ?? 1000);
      continue;
    }
    group.push(step);
    for (const p of o.peers) learnIds(p.client, p.expected, o.ids);
    sendGroup(client, group, o.ids);
    group = [];
  }
  await Promise.race([client.closed, sleep(3000)]);
  return { rec, client };
}

function sendGroup(client: RawClient, group: Step[], ids: IdMap): void {
  const texts = group.map((s) => s.text as string);
  const prefixed = group[0]?.prefix !== undefined;
  const json = prefixed ? texts.map((t) => t.slice(1)).join('') : (texts[0] as string);
  const rewritten = ids.text(json);
  if (rewritten === json) {
    for (const t of texts) client.sendFrame(t);
  } else if (!prefixed) {
    client.sendFrame(rewritten);
  } else {
    for (let i = 0; i < rewritten.length; i += SEGMENT)
      client.sendFrame(
        (i + SEGMENT < rewritten.length ? '1' : '0') + rewritten.slice(i, i + SEGMENT),
      );
  }
}

/** Learns server-allocated ids: recorded add_instance responses against ours. */
function learnIds(client: RawClient, expected: Expected[], ids: IdMap): void {
  for (const e of expected) {
    if (e.kind !== 'message' || e.msg.type !== 'response') continue;
    const data = e.msg.data as Msg | null;
    const ours = client.messages.find((m) => m.type === 'response' && m.id === e.msg.id);
    if (data !== null && typeof data === 'object' && 'instance_id' in data)
      ids.learn(data.instance_id, (ours?.data as Msg | undefined)?.instance_id);
  }
}

/** Waits until everything in `expected` has its counterpart among what the client received. */
async function arrived(client: RawClient, expected: Expected[], file: string): Promise<void> {
  const want = counts(expected.map(kindOf));
  await until(
    () => {
      const have = counts(client.received.map(kindOfReceived));
      return [...want].every(([k, n]) => (have.get(k) ?? 0) >= n) || client.closeCode !== null;
    },
    `${file}: server messages ${JSON.stringify([...want])}`,
    8000,
  );
}

function kindOf(e: Expected): string {
  if (e.kind !== 'message') return e.kind;
  return e.msg.type === 'response' ? `response:${e.msg.id}` : String(e.msg.type);
}

function kindOfReceived(r: Received): string {
  if (r.kind !== 'message') return r.kind;
  return r.msg.type === 'response' ? `response:${r.msg.id}` : String(r.msg.type);
}

function counts(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

interface Deviations {
  /** Compare states on the final state only (our push at login). */
  lenientState?: boolean;
  /** Response ids whose success/data deliberately differ, with what ours must be. */
  responses?: Record<number, { success: boolean; data: unknown }>;
  /** Diffs we send after the recorded ones (e.g. clearing the state on logout). */
  extraStates?: Msg[][];
}

const DEVIATIONS: Record<string, Deviations> = {
  g: { lenientState: true },
  h: {
    responses: { 3: { success: true, data: null } },
    extraStates: [[{ op: 'remove', path: '/models/1' }]],
  },
};

function compare(o: Observed, ids: IdMap, dev: Deviations): void {
  const { rec, client } = o;
  const file = rec.file;
  const framing = client.framing;
  const expected = expectedOf(rec, framing).map((e) =>
    e.kind === 'message' ? { ...e, msg: ids.message(e.msg) } : e,
  );
  const received = client.received.filter((r) => r.kind !== 'message' || r.msg.type !== 'notify');
  for (const r of client.received)
    if (r.kind === 'message' && r.msg.type === 'notify')
      assert.equal(r.msg.name, 'model_change', file);

  // Framing: 0.6 frames are bare JSON, 0.7 frames are prefixed; 0.7 segments follow the rule.
  for (const f of client.frames) {
    if (framing === '0.6') assert.equal(f[0], '{', `${file}: 0.6 frame ${f.slice(0, 20)}`);
    else assert.match(f[0] ?? '', /[0-3]/, `${file}: 0.7 frame ${f.slice(0, 20)}`);
  }
  if (framing === '0.7') {
    for (const r of client.received) {
      if (r.kind !== 'message') continue;
      r.segments.forEach((len, i) => {
        if (i < r.segments.length - 1) assert.equal(len, SEGMENT, `${file}: segment ${i}`);
        else assert.ok(len <= SEGMENT && len > 0, `${file}: last segment ${len}`);
      });
    }
  }

  // Responses: same ids, success and data; byte-identical texts and segment boundaries.
  const ours = new Map<number, Received & { kind: 'message' }>();
  for (const r of received)
    if (r.kind === 'message' && r.msg.type === 'response') ours.set(r.msg.id as number, r);
  const theirs = expected.filter(
    (e): e is Expected & { kind: 'message' } => e.kind === 'message' && e.msg.type === 'response',
  );
  assert.deepEqual(
    [...ours.keys()].sort(),
    theirs.map((e) => e.msg.id as number).sort(),
    `${file}: response ids`,
  );
  for (const e of theirs) {
    const id = e.msg.id as number;
    const r = ours.get(id) as Received & { kind: 'message' };
    const deviation = dev.responses?.[id];
    if (deviation !== undefined) {
      assert.deepEqual(
        { success: r.msg.success, data: r.msg.data },
        deviation,
        `${file}: response ${id}`,
      );
      continue;
    }
    assert.deepEqual(r.msg, e.msg, `${file}: response ${id}`);
    assert.equal(r.text, pyDumps(e.msg), `${file}: response ${id} text`);
    if (JSON.stringify(e.msg) === JSON.stringify(ids.message(e.msg)))
      assert.deepEqual(r.segments, e.segments, `${file}: response ${id} segments`);
  }

  // State diffs.
  const ourStates = received.flatMap((r) =>
    r.kind === 'message' && r.msg.type === 'state' ? [r] : [],
  );
  const theirStates = expected.flatMap((e) =>
    e.kind === 'message' && e.msg.type === 'state' ? [e] : [],
  );
  if (theirStates.length > 0) {
    const first = (ourStates[0]?.msg.diff as Msg[] | undefined)?.[0];
    assert.deepEqual(
      [first?.op, first?.path],
      ['replace', ''],
      `${file}: first diff replaces the root`,
    );
  }
  if (dev.lenientState) {
    const final = (list: Msg[][]) =>
      list.reduce<unknown>((s, d) => applyPatch(s, d as never), null);
    assert.deepEqual(
      stripState(final(ourStates.map((s) => s.msg.diff as Msg[]))),
      final(theirStates.map((s) => s.msg.diff as Msg[])),
      `${file}: final state`,
    );
  } else {
    const ourDiffs = ourStates
      .map((s) => stripDiff(s.msg.diff as Msg[]))
      .filter((d) => d.length > 0);
    const extra = (dev.extraStates ?? []).map((d) => d.map((op) => ids.message(op)));
    const theirDiffs = [...theirStates.map((s) => s.msg.diff as Msg[]), ...extra];
    assert.deepEqual(ourDiffs, theirDiffs, `${file}: state diffs`);
    // Where our diff carries no metadata, the text is AIMM's, byte for byte.
    for (const s of ourStates) {
      const match = theirStates.find((t) => JSON.stringify(t.msg) === JSON.stringify(s.msg));
      if (match !== undefined) assert.equal(s.text, match.text, `${file}: state text`);
    }
    // Order of responses, states and pings as recorded.
    const seq = (list: { kind: string; msg?: Msg }[]) =>
      list.map((x) =>
        x.kind !== 'message' ? x.kind : x.msg?.type === 'response' ? `r${x.msg.id}` : 's',
      );
    const ourSeq = seq(received).filter((k) => k !== 'pong');
    const theirSeq = [...seq(expected), ...(dev.extraStates ?? []).map(() => 's')].filter(
      (k) => k !== 'pong',
    );
    assert.deepEqual(ourSeq, theirSeq, `${file}: message order`);
  }

  // Pings: as many as recorded (AIMM's server pings 30 s after the last message; 0.6 never).
  const pings = (list: { kind: string }[]) => list.filter((x) => x.kind === 'ping').length;
  assert.equal(pings(client.received), pings(expected), `${file}: pings`);

  // Close: the server's close code as recorded.
  const serverClose = rec.steps.find((s) => s.dir === 's2c' && s.ws === 'close');
  if (serverClose !== undefined)
    assert.equal(client.closeCode, serverClose.close_code, `${file}: close code`);
}

async function replayScenario(h: Harness, recs: Recording[], scale: number): Promise<void> {
  const ids = new IdMap();
  const t0 = Date.now();
  const peers: ReplayOptions['peers'] = [];
  const observed = await Promise.all(
    recs.map((rec) => play(rec, { url: h.url, t0, scale, ids, peers })),
  );
  for (const o of observed) learnIds(o.client, expectedOf(o.rec, o.client.framing), ids);
  for (const o of observed) compare(o, ids, DEVIATIONS[recs[0]?.connection.scenario ?? ''] ?? {});
}

const recordings = loadRecordings();
const scenarios = new Map<string, Recording[]>();
for (const r of recordings) {
  if (r.framing === 'mismatch') continue;
  const key = `${r.framing} ${r.connection.scenario}`;
  scenarios.set(key, [...(scenarios.get(key) ?? []), r]);
}

describe('recorded AIMM sessions replayed against our control', () => {
  test('the recordings are all there', () => {
    assert.equal(recordings.length, 26);
    assert.equal(scenarios.size, 18);
  });

  for (const [key, recs] of scenarios) {
    const [framing, scenario] = key.split(' ') as ['0.6' | '0.7', string];
    const scale = scaleOf(scenario);
    const fixed = framing === '0.6' && recs.some(silentFirst);
    test(`${key}: ${recs.map((r) => r.file).join(', ')} (${fixed ? 'framing 0.6' : 'auto framing'}${framing === '0.7' ? ', ids offset by 5' : ''})`, async () => {
      const conf: Partial<JugglerConf> = {
        users: [ADMIN],
        state_instances: true,
        framing: fixed ? '0.6' : 'auto',
        ping_delay: scenario === 'e' ? 30 * scale : 600,
        ping_timeout: 30 * scale,
      };
      const h = await startJuggler({ ...conf, server: { autoflush_delay: 0.2 * scale } });
      try {
        if (framing === '0.7') {
          // Our ids then differ from AIMM's (6, 7 instead of 1, 2): exercises the id mapping.
          for (let i = 0; i < 5; i++) {
            const r = await h.backend.createModel('burnt', new Uint8Array(1));
            await h.backend.deleteModel(r.meta.instanceId);
          }
        }
        await replayScenario(h, recs, scale);
      } finally {
        await h.close();
      }
    });
  }

  test('mismatch recordings: our server detects each client framing and answers properly', async () => {
    const h = await startJuggler({ users: [ADMIN], state_instances: true });
    after(() => h.close());
    for (const rec of recordings.filter((r) => r.framing === 'mismatch')) {
      const framing = rec.client_framing as '0.6' | '0.7';
      const client = await RawClient.open(h.url, framing);
      const login = rec.steps.find((s) => s.dir === 'c2s' && s.ws === 'text') as Step;
      client.sendFrame(login.text as string);
      await client.waitFor((m) => m.some((x) => x.type === 'state'), `${rec.file}: state`);
      const expectedResponse =
        '{"type": "response", "id": 1, "data": {"success": true}, "success": true}';
      assert.equal(
        client.frames[0],
        framing === '0.6' ? expectedResponse : `0${expectedResponse}`,
        rec.file,
      );
      assert.equal(client.closeCode, null, `${rec.file}: still open`);
      await client.close();
      assert.equal(client.closeCode, 1000);
    }
  });
});
