/**
 * Large requests read from their bytes (large-request.ts) give exactly what parseRequest gives for
 * the message's text: the same request, or the same error; the shortcut is taken for the shapes
 * clients send, and its decoded instance is the base64's bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { CreateOptions, WriteOptions, WriteResult } from '../../src/backend/types.js';
import { encodeFrames } from '../../src/controls/juggler/framing.js';
import {
  decodedInstanceOf,
  instanceSpan,
  LARGE_VALUE_BYTES,
  parseLargeRequest,
} from '../../src/controls/juggler/large-request.js';
import { parseRequest } from '../../src/controls/juggler/messages.js';
import { MemoryBackend } from '../support/memory-backend.js';
import { type Harness, startJuggler } from './support/harness.js';
import { RawClient } from './support/raw-client.js';

const BIG = Buffer.alloc(LARGE_VALUE_BYTES, 0x5a);
BIG.write('model bytes');
const BIG_B64 = BIG.toString('base64');

/** What either parser does with `text`: its request, or its error (message and id). */
function outcome(parse: () => unknown): unknown {
  try {
    return { ok: parse() };
  } catch (err) {
    const e = err as { name: string; message: string; id?: number | null };
    return { error: e.name, message: e.message, id: e.id ?? null };
  }
}

function bothWays(text: string): { ours: unknown; text: unknown } {
  const bytes = Buffer.from(text, 'latin1');
  return { ours: outcome(() => parseLargeRequest(bytes)), text: outcome(() => parseRequest(text)) };
}

describe('large requests from their bytes', () => {
  test('the shapes clients send take the shortcut and give parseRequest’s request', () => {
    const data = { model_type: 'aimm.Model', instance_b64: BIG_B64, meta_only: true };
    const texts = [
      // hat-juggler (Python json.dumps), our client and @hat-open/juggler (JSON.stringify).
      `{"type": "request", "id": 7, "name": "add_instance", "data": {"model_type": "aimm.Model", "instance_b64": "${BIG_B64}", "meta_only": true}}`,
      JSON.stringify({ type: 'request', id: 7, name: 'add_instance', data }),
      JSON.stringify({
        data: { ...data, instance_id: 3 },
        name: 'update_instance',
        id: 7,
        type: 'request',
      }),
      ` \n{ "type" : "request" , "id" : 7 , "name" : "add_instance" , "data" : { "instance_b64" : "${BIG_B64}" } } \r\n`,
    ];
    for (const text of texts) {
      const bytes = Buffer.from(text, 'latin1');
      assert.notEqual(instanceSpan(bytes), null, text.slice(0, 60));
      const req = parseLargeRequest(bytes);
      assert.deepEqual(req, parseRequest(text));
      const d = req.data as { instance_b64: string };
      assert.deepEqual(decodedInstanceOf(d), BIG);
      // Handed over once: a second ask decodes again (the caller may keep the bytes).
      assert.equal(decodedInstanceOf(d), null);
      // The text, made again from the bytes on demand, is the request's.
      assert.equal(d.instance_b64, BIG_B64);
    }
  });

  test('anything else: the same request or the same error as parseRequest', () => {
    const ascii = fc.string({
      unit: fc.constantFrom(...'ab_"\\/{}[]:, \n\tu0123456789'.split('')),
      maxLength: 8,
    });
    const jsonString = ascii.map((s) => JSON.stringify(s));
    const escapedKey = fc.constantFrom('"d\\u0061ta"', '"instance\\u005fb64"', '"\\"data"');
    const key = fc.oneof(
      {
        arbitrary: fc.constantFrom('"type"', '"id"', '"name"', '"data"', '"instance_b64"'),
        weight: 1,
      },
      { arbitrary: jsonString, weight: 4 },
      { arbitrary: escapedKey, weight: 1 },
    );
    const bigString = fc.constantFrom(
      `"${BIG_B64}"`,
      `"${BIG_B64.slice(0, -4)}"`, // still canonical
      `"${BIG_B64.slice(0, -1)}"`, // not a multiple of 4
      `"${BIG_B64.slice(0, 100)}\n${BIG_B64.slice(101)}"`, // a raw control character: bad JSON
      `"${BIG_B64.slice(0, 100)}\\n${BIG_B64.slice(102)}"`, // an escape
      `"${BIG_B64.slice(0, 100)}*${BIG_B64.slice(101)}"`, // not base64
      `"${BIG_B64.slice(0, 100)}-${BIG_B64.slice(101)}"`, // URL-safe
      `"${BIG_B64}`, // never closed
    );
    const scalar = fc.oneof(
      jsonString,
      fc.constantFrom(
        '1',
        '7',
        '-2',
        '1.5',
        '1e3',
        'true',
        'null',
        'tru',
        '"request"',
        '"add_instance"',
        'x',
      ),
    );
    const value: fc.Arbitrary<string> = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        scalar,
        bigString,
        fc.array(tie('member'), { maxLength: 4 }).map((ms) => `{${ms.join(', ')}}`),
        fc.array(tie('v'), { maxLength: 3 }).map((vs) => `[${vs.join(',')}]`),
      ),
      member: fc
        .tuple(key, fc.constantFrom(':', ' : ', ': '), tie('v'))
        .map(([k, c, v]) => `${k}${c}${v}`),
    })).v as fc.Arbitrary<string>;
    const dataObject = fc
      .array(fc.tuple(key, value), { maxLength: 4 })
      .chain((ms) => fc.tuple(fc.constant(ms), fc.integer({ min: 0, max: ms.length }), bigString))
      .map(([ms, at, big]) => {
        const members = ms.map(([k, v]) => `${k}: ${v}`);
        members.splice(at, 0, `"instance_b64": ${big}`);
        return `{${members.join(', ')}}`;
      });
    const message = fc
      .tuple(
        fc.array(fc.tuple(key, value), { maxLength: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.oneof({ arbitrary: dataObject, weight: 5 }, { arbitrary: value, weight: 1 }),
        fc.constantFrom('', '', '', '', ' ', '\n', 'x', ',', '}'),
      )
      .map(([ms, at, data, tail]) => {
        const members = [
          '"type": "request"',
          '"id": 5',
          '"name": "add_instance"',
          ...ms.map(([k, v]) => `${k}: ${v}`),
        ];
        members.splice(Math.min(at, members.length), 0, `"data": ${data}`);
        return `{${members.join(', ')}}${tail}`;
      });
    let shortcut = 0;
    fc.assert(
      fc.property(message, (text) => {
        const r = bothWays(text);
        assert.deepEqual(r.ours, r.text);
        if (instanceSpan(Buffer.from(text, 'latin1')) !== null) shortcut++;
      }),
      { numRuns: 600, seed: 24 },
    );
    // The generator reaches the shortcut often enough for the comparison to mean something.
    assert.ok(shortcut > 25, `shortcut taken ${shortcut} times`);
  });

  test('a real request with a few bytes changed anywhere: the same request or the same error', () => {
    const text = `{"type": "request", "id": 9, "name": "update_instance", "data": {"instance_id": 4, "model_type": "aimm.Model", "instance_b64": "${BIG_B64}", "expected_revision": 2}}`;
    const head = text.indexOf('"instance_b64"') + 20;
    const tail = text.length - 40;
    // Positions near the structure (before and after the base64) and anywhere in it.
    const at = fc.oneof(
      fc.integer({ min: 0, max: head }),
      fc.integer({ min: tail, max: text.length - 1 }),
      fc.integer({ min: 0, max: text.length - 1 }),
    );
    const byte = fc.constantFrom(...'"\\{}[],: =Aa0+/-_\n\t\u0001\u007fx'.split(''));
    const edit = fc.tuple(at, byte, fc.constantFrom('replace', 'insert', 'delete'));
    let shortcut = 0;
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        let t = text;
        for (const [i, c, kind] of edits) {
          const j = Math.min(i, t.length - 1);
          t =
            kind === 'insert'
              ? t.slice(0, j) + c + t.slice(j)
              : t.slice(0, j) + (kind === 'replace' ? c : '') + t.slice(j + 1);
        }
        const r = bothWays(t);
        assert.deepEqual(r.ours, r.text, JSON.stringify(edits));
        if (instanceSpan(Buffer.from(t, 'latin1')) !== null) shortcut++;
      }),
      { numRuns: 500, seed: 11 },
    );
    assert.ok(shortcut > 100, `shortcut taken ${shortcut} times`);
  });

  test('duplicate or escaped names never take the shortcut', () => {
    const m = (data: string, extra = '') =>
      Buffer.from(
        `{"type": "request", "id": 1, "name": "add_instance", "data": ${data}${extra}}`,
        'latin1',
      );
    const big = `"instance_b64": "${BIG_B64}"`;
    assert.notEqual(instanceSpan(m(`{${big}}`)), null);
    assert.equal(instanceSpan(m(`{${big}, "instance_b64": ""}`)), null);
    assert.equal(instanceSpan(m(`{${big}}`, ', "data": {}')), null);
    assert.equal(instanceSpan(m(`{${big}, "instance\\u005fb64": ""}`)), null);
    assert.equal(instanceSpan(m(`{${big}}`, ', "d\\u0061ta": {}')), null);
    // The last duplicate wins in JSON.parse, and so here (by the whole text).
    const dup = m(`{${big}, "instance_b64": ""}`);
    const req = parseLargeRequest(dup);
    assert.equal((req.data as { instance_b64: string }).instance_b64, '');
  });
});

describe('large requests through the server', () => {
  const model = Buffer.alloc(3 * LARGE_VALUE_BYTES, 0x41);
  model.write('large model', 5);
  const b64 = model.toString('base64');
  /** The 0.7 segments of `json` (65 536 characters each, as clients cut them). */
  const segments = (json: string) => encodeFrames('0.7', json, 65_536);

  for (const framing of ['0.6', '0.7'] as const) {
    test(`${framing}: a large add_instance and update_instance store the bytes (ASCII, and not)`, () =>
      withJuggler(async (h) => {
        const c = await RawClient.open(h.url, framing);
        const send = (json: string) => {
          if (framing === '0.6') c.sendFrame(json);
          else for (const s of segments(json)) c.sendFrame(s);
        };
        send(
          `{"type": "request", "id": 1, "name": "add_instance", "data": {"model_type": "big.Model", "instance_b64": "${b64}"}}`,
        );
        const r1 = await c.response(1);
        assert.equal(r1.success, true, JSON.stringify(r1.data));
        const id = (r1.data as { instance_id: number }).instance_id;
        assert.deepEqual((await h.backend.getModel(id))?.instance, model);
        // A non-ASCII model type: the message is read as text, as before.
        const other = Buffer.from(model).fill(0x42, 0, 10);
        send(
          JSON.stringify({
            type: 'request',
            id: 2,
            name: 'update_instance',
            data: {
              instance_id: id,
              model_type: 'grand.Modèle',
              instance_b64: other.toString('base64'),
            },
          }),
        );
        const r2 = await c.response(2);
        assert.equal(r2.success, true, JSON.stringify(r2.data));
        const stored = await h.backend.getModel(id);
        assert.deepEqual(stored?.instance, other);
        assert.equal(stored?.modelType, 'grand.Modèle');
        // A request's base64 text is handed on when it exists (a request read as text), so that
        // a backend need not encode it again; one read from its bytes makes no such text.
        assert.deepEqual((h.backend as RecordingBackend).base64s, [
          undefined,
          other.toString('base64'),
        ]);
        // AIMM's full reply carries the base64 all the same.
        assert.equal((r1.data as { instance: string }).instance, b64);
        // Not base64: refused as a small request would be.
        send(
          `{"type": "request", "id": 3, "name": "update_instance", "data": {"instance_id": ${id}, "model_type": "big.Model", "instance_b64": "${b64.slice(0, 99)}*${b64.slice(100)}"}}`,
        );
        const r3 = await c.response(3);
        assert.equal(r3.success, false);
        assert.match(String(r3.data), /instance_b64 is not valid standard base64/);
        await c.close();
      }));
  }
});

/** Records the `base64` option of each write. */
class RecordingBackend extends MemoryBackend {
  readonly base64s: (string | undefined)[] = [];
  override createModel(t: string, i: Uint8Array, o?: CreateOptions): Promise<WriteResult> {
    this.base64s.push(o?.base64);
    return super.createModel(t, i, o);
  }
  override updateModel(
    id: number,
    t: string,
    i: Uint8Array,
    o?: WriteOptions & CreateOptions,
  ): Promise<WriteResult> {
    this.base64s.push(o?.base64);
    return super.updateModel(id, t, i, o);
  }
}

async function withJuggler(fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startJuggler({}, new RecordingBackend());
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

describe('0.6 messages that are not 0.6 JSON, small and large alike', () => {
  const pad = 'A'.repeat(LARGE_VALUE_BYTES);
  for (const size of ['small', 'large'] as const) {
    const body = `{"type": "request", "id": 2, "name": "x", "data": "${size === 'large' ? pad : ''}"}`;
    test(`${size}: a 0.7 segment on a 0.6 connection is a framing error`, () =>
      withJuggler(async (h) => {
        const c = await RawClient.open(h.url, '0.6');
        await c.request('list', null); // the connection speaks 0.6
        c.sendFrame(`0${body}`);
        await c.waitClosed();
        assert.equal(c.closeCode, 1002);
        assert.match(c.closeReason, /expected hat-juggler 0.6 framing/);
      }));
    test(`${size}: another character before the brace is not JSON`, () =>
      withJuggler(async (h) => {
        const c = await RawClient.open(h.url, '0.6');
        await c.request('list', null);
        c.sendFrame(`x${body}`);
        await c.waitClosed();
        assert.equal(c.closeCode, 1002);
        assert.match(c.closeReason, /not valid JSON/);
      }));
  }
});
