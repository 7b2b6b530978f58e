/**
 * Unit tests of the event backend's parts: AIMM format (Python json.dumps strings against the
 * server's recorded normalisation), id allocation, the state's exactly-once application, the
 * write pipeline's batching, the intake's merge of held notifications, backoff and config.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseConfig } from '../../src/backends/event/config.js';
import { type EventRef, isoOf, refOf } from '../../src/backends/event/event-ref.js';
import {
  decodeModelEvent,
  decodePaddedBase64,
  isPaddedBase64,
  modelPayloadParts,
  modelPayloadText,
  parseInstanceId,
} from '../../src/backends/event/format.js';
import { IdAllocator } from '../../src/backends/event/ids.js';
import { EventIntake } from '../../src/backends/event/intake.js';
import { ModelState } from '../../src/backends/event/state.js';
import { MemoryStore } from '../../src/backends/event/store.js';
import { WritePipeline } from '../../src/backends/event/write-pipeline.js';
import { confSchema, create, createSubscription } from '../../src/backends/event.js';
import { backoffDelay } from '../../src/common/backoff.js';
import { SchemaRegistry } from '../../src/common/schema.js';
import type { Event } from '../../src/hat/eventer/common.js';
import { pythonJsonDumps, pythonJsonString } from '../../src/hat/eventer/json.js';
import { loadVectors } from '../hat/vectors.js';

const P = ['aimm', 'model'];

function ev(session: number, instance: number, id: string, payload: string | null): Event {
  return {
    id: { server: 1, session, instance },
    type: [...P, id],
    timestamp: { s: 1_700_000_000 + session, us: 0 },
    sourceTimestamp: null,
    payload: payload === null ? null : { kind: 'json', text: payload },
  };
}

const model = (type: string, data: string) =>
  modelPayloadText(type, new TextEncoder().encode(data));

describe('AIMM format', () => {
  it("strings are written as Python's json.dumps writes them (recorded server normalisation)", () => {
    const cases = loadVectors<{ cases: { sent: string; returned: string }[] }>(
      'json-normalisation.json',
    ).cases.filter((c) => c.returned.startsWith('"'));
    assert.ok(cases.length >= 8);
    for (const c of cases) {
      const value = JSON.parse(c.sent) as string;
      assert.equal(pythonJsonString(value), c.returned, c.sent);
    }
  });

  it('payload texts are already in the server’s normal form, for any type and bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.uint8Array({ maxLength: 64 }), (t, bytes) => {
        const text = modelPayloadText(t, bytes);
        assert.equal(pythonJsonDumps(text), text);
        const d = decodeModelEvent(P, { type: [...P, '3'], payload: { kind: 'json', text } });
        assert.equal(d.kind, 'model');
        if (d.kind === 'model') {
          assert.equal(d.modelType, t);
          assert.deepEqual([...d.instance], [...bytes]);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("the caller's base64 of the bytes is used as given, one of another length never", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const b64 = Buffer.from(bytes).toString('base64');
        const given = modelPayloadParts('t', bytes, b64);
        assert.equal(given.join(''), modelPayloadText('t', bytes));
        assert.equal(given[1], b64);
        // (The same length with other characters would be the caller's error: it is trusted.)
        const marked = `${b64}AAAA`;
        assert.equal(modelPayloadParts('t', bytes, marked).join(''), modelPayloadText('t', bytes));
        assert.equal(
          modelPayloadParts('t', bytes, b64.slice(4)).join(''),
          modelPayloadText('t', bytes),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('instance ids: canonical positive decimals only', () => {
    const ok = (seg: string) => 'id' in parseInstanceId(P, [...P, seg]);
    assert.ok(ok('1'));
    assert.ok(ok('10'));
    assert.ok(ok('9007199254740991'));
    for (const bad of ['0', '-1', '01', '1.0', '1e3', ' 1', 'abc', '', '9007199254740993', '+1'])
      assert.ok(!ok(bad), bad);
    assert.ok(!('id' in parseInstanceId(P, [...P])), 'bare prefix');
    assert.ok(!('id' in parseInstanceId(P, [...P, '1', 'x'])), 'too long');
    assert.ok(!('id' in parseInstanceId(P, ['aimm', 'other', '1'])), 'other prefix');
  });

  it('malformed payloads say why', () => {
    const reason = (payload: Event['payload']) => {
      const d = decodeModelEvent(P, { type: [...P, '2'], payload });
      return d.kind === 'malformed' ? [d.reason, d.instanceId] : d.kind;
    };
    assert.equal(reason(null), 'tombstone');
    assert.deepEqual(reason({ kind: 'binary', type: 'x', data: new Uint8Array() }), [
      'binary_payload',
      2,
    ]);
    assert.deepEqual(reason({ kind: 'json', text: '{"type": ' }), ['bad_json', 2]);
    assert.deepEqual(reason({ kind: 'json', text: 'null' }), ['not_aimm_shaped', 2]);
    assert.deepEqual(reason({ kind: 'json', text: '{"type": 1, "instance": ""}' }), [
      'not_aimm_shaped',
      2,
    ]);
    assert.deepEqual(reason({ kind: 'json', text: '{"type": "t", "instance": 5}' }), [
      'not_aimm_shaped',
      2,
    ]);
    for (const b64 of [
      'aGVsbG8',
      'aGVs bG8=',
      'aGVsbG8-',
      'a===',
      '=AAA',
      'aGVsbG8_',
      'AA==AAAA',
      'AA=A',
      'AAAA!A==',
      'AA\\nA',
      'A===',
    ])
      assert.deepEqual(reason({ kind: 'json', text: `{"type": "t", "instance": "${b64}"}` }), [
        'bad_base64',
        2,
      ]);
    assert.equal(
      reason({ kind: 'json', text: '{"type": "t", "instance": "", "extra": 1}' }),
      'model',
    );
  });

  it('base64: every padded encoding decodes; any single corruption is refused', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.nat(),
        fc.constantFrom(' ', '!', '-', '_', '=', '.', 'é'),
        (bytes, at, ch) => {
          const b64 = Buffer.from(bytes).toString('base64');
          assert.deepEqual([...(decodePaddedBase64(b64) ?? [])], [...bytes]);
          if (b64.length === 0) return;
          const i = at % b64.length;
          const bad = b64.slice(0, i) + ch + b64.slice(i + 1);
          // A '=' in the last two places can make another valid encoding ("AAAA" → "AAA=").
          if (ch === '=' && i >= b64.length - 2) return;
          assert.equal(decodePaddedBase64(bad), null, bad);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('base64 check is linear (multi-megabyte instances)', () => {
    const big = Buffer.alloc(6 * 1024 * 1024, 0xab).toString('base64');
    assert.ok(isPaddedBase64(big));
    assert.ok(!isPaddedBase64(`${big}A`));
  });
});

describe('id allocation', () => {
  it('max(known)+1, never below anything observed', () => {
    const ids = new IdAllocator();
    assert.equal(ids.next(), 1);
    ids.observe(7);
    assert.equal(ids.next(), 8);
    ids.observe(3);
    assert.equal(ids.next(), 9);
  });

  it('offset/stride: writers with different offsets never collide', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.array(fc.tuple(fc.nat(6), fc.nat(50)), { maxLength: 60 }),
        (stride, steps) => {
          const writers = Array.from({ length: stride }, (_, k) => new IdAllocator(stride, k));
          const taken = new Set<number>();
          for (const [w, observe] of steps) {
            const a = writers[w % stride] as IdAllocator;
            if (observe > 40) a.observe(observe);
            const id = a.next();
            assert.equal(id % stride, (w % stride) % stride);
            assert.ok(!taken.has(id), `id ${id} handed out twice`);
            taken.add(id);
            for (const other of writers) other.observe(id);
          }
        },
      ),
    );
  });
});

describe('model state', () => {
  const remote = () => 'remote' as const;

  it('applies each event exactly once: overlapping re-deliveries (catch-up + notify) change nothing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.boolean()), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 8 })), { maxLength: 40 }),
        (writes, chunks) => {
          const events = writes.map(([id, del], i) =>
            ev(i + 1, 1, String(id), del ? null : model('t', `v${i}`)),
          );
          // Deliveries advance a frontier; each may start anywhere before it (a re-delivery).
          const st = new ModelState(P, new MemoryStore());
          let frontier = 0;
          for (const [start, len] of chunks) {
            const from = start % (frontier + 1);
            const to = Math.min(events.length, Math.max(frontier, from) + len);
            st.apply(events.slice(from, to), remote);
            frontier = Math.max(frontier, to);
          }
          st.apply(events.slice(frontier), remote);
          const ref = new ModelState(P, new MemoryStore());
          ref.apply(events, remote);
          assert.deepEqual(
            st.allEntries().sort((a, b) => a.instanceId - b.instanceId),
            ref.allEntries().sort((a, b) => a.instanceId - b.instanceId),
          );
          assert.deepEqual(st.checkpoint, ref.checkpoint);
        },
      ),
    );
  });

  it('revisions count events per id; tombstones count; duplicates do not', () => {
    const st = new ModelState(P, new MemoryStore());
    const evs = [
      ev(1, 1, '1', model('a', 'x')),
      ev(2, 1, '1', model('a', 'y')),
      ev(3, 1, '1', null),
      ev(4, 1, '1', model('b', 'z')),
    ];
    const r = st.apply([evs[2], evs[0], evs[3], evs[1]] as Event[], remote);
    assert.deepEqual(
      r.changes.map((c) => [c.change, c.revision, c.modelType]),
      [
        ['created', 1, 'a'],
        ['updated', 2, 'a'],
        ['deleted', 3, 'a'],
        ['created', 4, 'b'],
      ],
    );
    const again = st.apply(evs, remote);
    assert.equal(again.changes.length, 0);
    assert.ok(again.outcomes.every((o) => o.kind === 'duplicate'));
    assert.equal(st.get(1)?.revision, 4);
    assert.equal(st.highWater, 1);
  });

  it('malformed events move the checkpoint and the id high-water mark, nothing else', () => {
    const st = new ModelState(P, new MemoryStore());
    const r = st.apply([ev(1, 1, '42', '{"nope": 1}'), ev(1, 2, 'x', null)], remote);
    assert.deepEqual(
      r.outcomes.map((o) => o.kind),
      ['malformed', 'malformed'],
    );
    assert.equal(st.size, 0);
    assert.equal(st.highWater, 42);
    assert.deepEqual([st.checkpoint?.session, st.checkpoint?.instance], [1, 2]);
  });

  it('scannedUpTo moves the checkpoint past other event types', () => {
    const st = new ModelState(P, new MemoryStore());
    const far: EventRef = { server: 1, session: 99, instance: 3, s: 1, us: 0 };
    st.apply([ev(1, 1, '1', model('t', 'a'))], remote, far);
    assert.deepEqual(st.checkpoint, far);
    assert.ok(st.isApplied({ server: 1, session: 50, instance: 1, s: 0, us: 0 }, null));
  });
});

/** An intake applying to a fresh model state; `applied` lists each change as `id:revision:origin`. */
function intakeOnState(): { intake: EventIntake; applied: string[] } {
  const st = new ModelState(P, new MemoryStore());
  const applied: string[] = [];
  const intake = new EventIntake((events, originOf) => {
    const res = st.apply(events, originOf);
    for (const c of res.changes) applied.push(`${c.instanceId}:${c.revision}:${c.origin}`);
    return res.outcomes;
  });
  return { intake, applied };
}

describe('intake', () => {
  it('holds notifications while a register is in flight and applies ours as local, in id order', () => {
    const { intake, applied } = intakeOnState();
    intake.hold();
    const remoteBefore = ev(1, 1, '1', model('t', 'remote'));
    const ours = ev(2, 1, '1', model('t', 'ours'));
    // Hat notifies (remote event, then our own) before answering our register.
    intake.push([remoteBefore]);
    intake.push([ours]);
    assert.deepEqual(applied, []);
    const outcomes: string[] = [];
    intake.addLocal([ours], (i, o) => outcomes.push(`${i}:${o.kind}`));
    intake.release();
    assert.deepEqual(applied, ['1:1:remote', '1:2:local']);
    assert.deepEqual(outcomes, ['0:applied']);
  });
  it('with several registers in flight, an answer applies the held events up to its last one', () => {
    const { intake, applied } = intakeOnState();
    intake.holdRegister(); // request A
    intake.holdRegister(); // request B
    const a = ev(1, 1, '1', model('t', 'a'));
    const remote = ev(2, 1, '2', model('t', 'remote'));
    const b = ev(3, 1, '3', model('t', 'b'));
    intake.push([a, remote, b]); // Hat notifies A's, a remote event and B's before answering A
    const settled: string[] = [];
    intake.addLocal([a], (_i, o) => settled.push(`a:${o.kind}`));
    intake.releaseRegister(refOf(a));
    assert.deepEqual(applied, ['1:1:local'], "only up to A's event: B's is not known as ours yet");
    assert.deepEqual(settled, ['a:applied']);
    intake.addLocal([b], (_i, o) => settled.push(`b:${o.kind}`));
    intake.releaseRegister(refOf(b));
    assert.deepEqual(applied, ['1:1:local', '2:1:remote', '3:1:local']);
    assert.deepEqual(settled, ['a:applied', 'b:applied']);
  });
});

describe('write pipeline', () => {
  it('batches what arrives while a batch is in flight, bounded by count and bytes, in order', async () => {
    const batches: number[][] = [];
    let release: () => void = () => {};
    const pipeline = new WritePipeline<number>({
      maxBatchItems: 4,
      maxBatchBytes: 100,
      sizeOf: (n) => (n === 99 ? 500 : 10),
      process: async (batch) => {
        batches.push(batch);
        await new Promise<void>((r) => {
          release = r;
        });
      },
      onProcessError: () => {},
    });
    pipeline.push(1); // goes at once
    for (const n of [2, 3, 4, 5, 6, 99, 7]) pipeline.push(n);
    assert.deepEqual(batches, [[1]]);
    assert.equal(pipeline.depth, 7);
    for (let i = 0; i < 5; i++) {
      release();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(batches, [[1], [2, 3, 4, 5], [6], [99], [7]]);
    await pipeline.whenIdle();
    pipeline.close();
  });

  it('does not keep the writes it has sent (their payloads) reachable', async () => {
    const pipeline = new WritePipeline<{ payload: Uint8Array }>({
      maxBatchItems: 4,
      maxBatchBytes: 1 << 20,
      sizeOf: (w) => w.payload.length,
      process: async () => {
        await new Promise((r) => setImmediate(r));
      },
      onProcessError: () => {},
    });
    for (let i = 0; i < 50; i++) pipeline.push({ payload: new Uint8Array(512 << 10) });
    assert.ok(pipeline.referenced > 0);
    await pipeline.whenIdle();
    assert.equal(pipeline.referenced, 0, 'every sent write released');
    pipeline.close();
  });

  it('survives tens of thousands of writers arriving while batches are in flight', async () => {
    let processed = 0;
    let batches = 0;
    const pipeline = new WritePipeline<number>({
      maxBatchItems: 100,
      maxBatchBytes: 1e9,
      sizeOf: () => 1,
      process: async (batch) => {
        batches++;
        await new Promise((r) => setImmediate(r));
        processed += batch.length;
      },
      onProcessError: () => {},
    });
    // 64 concurrent writers, each pushing its next write as soon as the previous is taken.
    const total = 30_000;
    let pushed = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (pushed < total) {
          pushed++;
          pipeline.push(pushed);
          await Promise.resolve();
        }
      }),
    );
    await pipeline.whenIdle();
    assert.equal(processed, total);
    assert.ok(batches <= total / 50, `${batches} batches`);
    pipeline.close();
  });

  it('keeps up to `window` batches in flight, in push order; a batch sharing a key waits for the window to empty', async () => {
    const sent: number[][] = [];
    const applied: number[][] = [];
    const answers: (() => void)[] = [];
    const pipeline = new WritePipeline<number>({
      maxBatchItems: 2,
      maxBatchBytes: 1000,
      sizeOf: () => 1,
      window: 3,
      keyOf: (n) => n % 10,
      process: async (batch, previous) => {
        sent.push(batch);
        await new Promise<void>((r) => answers.push(r));
        await previous;
        applied.push(batch);
      },
      onProcessError: () => {},
    });
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) pipeline.push(n);
    await waitUntil(() => sent.length === 3);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(sent, [[1], [2, 3], [4, 5]], 'three in flight, no more');
    // Answers arrive in reverse order: results are still applied in send order.
    (answers[2] as () => void)();
    (answers[1] as () => void)();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(applied, []);
    (answers[0] as () => void)();
    await waitUntil(() => sent.length === 5);
    assert.deepEqual(applied, [[1], [2, 3], [4, 5]]);
    assert.deepEqual(sent.slice(3), [[6, 7], [8]]);
    // 16 shares key 6 with [6, 7] in flight: it waits until nothing is in flight.
    pipeline.push(16);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(sent.length, 5, '16 waits while [6, 7] is in flight');
    (answers[3] as () => void)();
    await waitUntil(() => applied.length === 4);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(sent.length, 5, '... and then until the window is empty ([8] is in flight)');
    (answers[4] as () => void)();
    await waitUntil(() => sent.length === 6);
    assert.deepEqual(sent[5], [16]);
    (answers[5] as () => void)();
    await pipeline.whenIdle();
    assert.deepEqual(applied, sent, 'everything applied in send order');
    pipeline.close();
  });

  it('drain removes the waiting items (not the batch in flight); a throwing process hands its batch back', async () => {
    const failed: number[] = [];
    const pipeline = new WritePipeline<number>({
      maxBatchItems: 10,
      maxBatchBytes: 1000,
      sizeOf: () => 1,
      process: async () => {
        await new Promise((r) => setImmediate(r));
        throw new Error('bug');
      },
      onProcessError: (_err, batch) => failed.push(...batch),
    });
    pipeline.push(1);
    pipeline.push(2);
    pipeline.push(3);
    assert.deepEqual(pipeline.drain(), [2, 3]);
    assert.equal(pipeline.depth, 0);
    await pipeline.whenIdle();
    assert.deepEqual(failed, [1]);
    pipeline.push(4);
    await pipeline.whenIdle();
    assert.deepEqual(failed, [1, 4], 'the pipeline keeps working after an error');
    pipeline.close();
  });
});

describe('module entry and schema', () => {
  it('exports create, createSubscription and confSchema; the schema is the seed’s plus extras', () => {
    assert.equal(typeof create, 'function');
    assert.equal(confSchema, 'aimm://server/backend/event.yaml#');
    assert.deepEqual(createSubscription({ module: 'x', model_prefix: ['aimm', 'model'] }), [
      ['aimm', 'model', '*'],
    ]);
    const schemas = new SchemaRegistry();
    const ok = (conf: unknown) => schemas.validate(confSchema, conf, '$.backend');
    assert.deepEqual(ok({ module: 'aimm.server.backend.event', model_prefix: ['a'] }), []);
    assert.deepEqual(
      ok({
        module: 'aimm-store/backends/event',
        model_prefix: ['a'],
        snapshot: { path: 's.db' },
        ack: 'persisted',
        queue_when_disconnected: true,
        id_allocation: { stride: 2, offset: 1 },
        full_replay: 'latest',
        catch_up: 'server',
        reconnect: { min_delay_ms: 10, max_delay_ms: 100 },
        max_batch_events: 10,
        max_batch_bytes: 1000,
        max_instance_bytes: 1000,
        request_timeout_ms: 100,
        catch_up_page_size: 100,
        catch_up_page_bytes: 1000,
        close_timeout_ms: 0,
      }),
      [],
    );
    const rules = (conf: unknown) => ok(conf).map((i) => `${i.path} ${i.rule}`);
    assert.deepEqual(rules({ module: 'x' }), ['$.backend.model_prefix required']);
    assert.deepEqual(rules({ module: 'x', model_prefix: [1] }), ['$.backend.model_prefix[0] type']);
    assert.deepEqual(rules({ module: 'x', model_prefix: [], snapshot: {} }), [
      '$.backend.snapshot.path required',
    ]);
    assert.deepEqual(rules({ module: 'x', model_prefix: [], acks: 'persisted' }), [
      '$.backend.acks additionalProperties',
    ]);
    for (const mode of ['auto', 'timeseries', 'server'])
      assert.deepEqual(ok({ module: 'x', model_prefix: [], catch_up: mode }), []);
    assert.deepEqual(rules({ module: 'x', model_prefix: [], catch_up: 'latest' }), [
      '$.backend.catch_up enum',
    ]);
  });
});

describe('backoff and config', () => {
  it('backoff grows exponentially, is jittered into [50%, 100%] and capped', () => {
    // [attempt, random, delay] with min 100 ms and max 10 s
    for (const [attempt, random, delay] of [
      [0, 0, 50],
      [0, 0.999999, 100],
      [3, 0.999999, 800],
      [30, 0.999999, 10_000],
      [1000, 0, 5000],
    ] as const)
      assert.equal(
        backoffDelay(attempt, 100, 10_000, () => random),
        delay,
        `attempt ${attempt}`,
      );
  });

  it('config: defaults, and clear errors', () => {
    const c = parseConfig({ module: 'x', model_prefix: ['a'] });
    assert.equal(c.ack, 'registered');
    assert.equal(c.snapshotPath, null);
    assert.equal(c.idStride, 1);
    assert.equal(c.fullReplay, 'latest_then_history');
    assert.equal(c.catchUp, 'auto');
    assert.equal(parseConfig({ model_prefix: ['a'], catch_up: 'server' }).catchUp, 'server');
    assert.throws(
      () => parseConfig({ model_prefix: ['a'], catch_up: 'everything' }),
      /catch_up must be 'auto', 'timeseries' or 'server'/,
    );
    assert.throws(() => parseConfig({ module: 'x' }), /model_prefix must be an array of strings/);
    assert.throws(() => parseConfig({ module: 'x', model_prefix: ['a', '*'] }), /wildcard/);
    assert.throws(
      () => parseConfig({ module: 'x', model_prefix: [], queue_when_disconnected: true }),
      /needs a snapshot/,
    );
    assert.throws(
      () => parseConfig({ module: 'x', model_prefix: [], id_allocation: { stride: 2, offset: 2 } }),
      /offset must be smaller/,
    );
    assert.throws(() => parseConfig({ module: 'x', model_prefix: [], ack: 'maybe' }), /ack must/);
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), 'condition never became true');
}

describe('event time as text', () => {
  /** What isoOf promises: Date's ISO text of the millisecond, the epoch for what is no date. */
  const reference = (s: number, us: number): string => {
    const d = new Date(s * 1000 + Math.floor(us / 1000));
    return Number.isNaN(d.getTime()) ? new Date(0).toISOString() : d.toISOString();
  };

  it('equals the ISO text of the millisecond, in order, out of order and at the edges', () => {
    const timestamps = fc.tuple(
      fc.oneof(
        fc.integer({ min: 1_700_000_000, max: 1_700_000_003 }), // runs within one second
        fc.integer({ min: -62_167_219_300, max: 253_402_300_900 }), // years 0 to 10 000
        fc.constantFrom(0, -1, 253_402_300_799, 253_402_300_800, -62_167_219_201, 8.64e12, 1e13),
      ),
      fc.integer({ min: 0, max: 999_999 }),
    );
    fc.assert(
      fc.property(fc.array(timestamps, { minLength: 1, maxLength: 20 }), (ts) => {
        for (const [s, us] of ts) assert.equal(isoOf({ s, us }), reference(s, us), `${s} ${us}`);
      }),
      { numRuns: 2000 },
    );
  });
});
