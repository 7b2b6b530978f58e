/**
 * `chatter-frames.json`: every frame encodes to its exact bytes (sha256 for the large ones) and
 * decodes back, whole, byte by byte and in random splits; the decode_only frames are accepted.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FrameReader } from '../../src/hat/chatter/framing.js';
import {
  type ChatterMsg,
  decodeBody,
  encodeFrame,
  encodeFrameParts,
  SEPARATE_DATA_BYTES,
} from '../../src/hat/chatter/message.js';
import * as schema from '../../src/hat/eventer/schema.js';
import { decode } from '../../src/hat/sbs/codec.js';
import { hex, loadVectors, toVectorValue, unhex } from './vectors.js';

interface VecMsg {
  id: number;
  first: number;
  owner: boolean;
  token: boolean;
  last: boolean;
  data: { type: string; data_hex?: string; data_len?: number; data_sha256?: string };
}
interface Frame {
  label: string;
  msg: VecMsg;
  payload_value?: unknown;
  length_prefix_hex: string;
  body_len: number;
  frame_hex?: string;
  frame_len?: number;
  frame_sha256?: string;
  frame_head_hex?: string;
  frame_tail_hex?: string;
}
const file = loadVectors<{
  frames: Frame[];
  decode_only: { label: string; frame_hex: string; msg: VecMsg }[];
}>('chatter-frames.json');

function patternData(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

function toMsg(v: VecMsg): ChatterMsg {
  const data =
    v.data.data_hex !== undefined ? unhex(v.data.data_hex) : patternData(v.data.data_len as number);
  return {
    id: v.id,
    first: v.first,
    owner: v.owner,
    token: v.token,
    last: v.last,
    type: v.data.type,
    data,
  };
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function readAll(chunks: Uint8Array[], max = 1 << 24): ChatterMsg[] {
  const reader = new FrameReader(max);
  const out: ChatterMsg[] = [];
  for (const c of chunks) reader.push(c, (body) => out.push(decodeBody(body)));
  assert.equal(reader.buffered, 0, 'nothing left half-read');
  return out;
}

function assertMsg(actual: ChatterMsg, expected: VecMsg): void {
  assert.equal(actual.id, expected.id);
  assert.equal(actual.first, expected.first);
  assert.equal(actual.owner, expected.owner);
  assert.equal(actual.token, expected.token);
  assert.equal(actual.last, expected.last);
  assert.equal(actual.type, expected.data.type);
  if (expected.data.data_hex !== undefined) assert.equal(hex(actual.data), expected.data.data_hex);
  else {
    assert.equal(actual.data.length, expected.data.data_len);
    assert.equal(sha256(actual.data), expected.data.data_sha256);
  }
}

const encodedFrames = file.frames.map((f) => encodeFrame(toMsg(f.msg)));

describe('chatter-frames.json', () => {
  test('the file has the documented counts', () => {
    assert.equal(file.frames.length, 18);
    assert.equal(file.decode_only.length, 4);
  });

  for (const [i, f] of file.frames.entries()) {
    test(`frame ${i}: ${f.label}`, () => {
      const frame = encodedFrames[i] as Buffer;
      assert.equal(hex(frame.subarray(0, f.length_prefix_hex.length / 2)), f.length_prefix_hex);
      assert.equal(frame.length - f.length_prefix_hex.length / 2, f.body_len);
      if (f.frame_hex !== undefined) {
        assert.equal(hex(frame), f.frame_hex, 'frame bytes differ');
      } else {
        assert.equal(frame.length, f.frame_len);
        assert.equal(hex(frame.subarray(0, 64)), f.frame_head_hex);
        assert.equal(hex(frame.subarray(frame.length - 16)), f.frame_tail_hex);
        assert.equal(sha256(frame), f.frame_sha256, 'frame sha256 differs');
      }
      const [msg] = readAll([frame]);
      assertMsg(msg as ChatterMsg, f.msg);
      if (f.payload_value !== undefined) {
        const type = schema.types[f.msg.data.type];
        assert.ok(type !== undefined);
        assert.deepStrictEqual(
          toVectorValue(decode(type, (msg as ChatterMsg).data)),
          f.payload_value,
        );
      }
    });
  }

  for (const [i, f] of file.decode_only.entries()) {
    test(`decode_only ${i}: ${f.label}`, () => {
      const [msg] = readAll([unhex(f.frame_hex)]);
      assertMsg(msg as ChatterMsg, f.msg);
    });
  }

  test('all frames back to back, fed one byte at a time', () => {
    const stream = Buffer.concat([
      ...encodedFrames.filter((f) => f.length < 2000),
      ...file.decode_only.map((f) => unhex(f.frame_hex)),
    ]);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
    const msgs = readAll(chunks);
    const expected = [
      ...file.frames.filter((_, i) => (encodedFrames[i] as Buffer).length < 2000).map((f) => f.msg),
      ...file.decode_only.map((f) => f.msg),
    ];
    assert.equal(msgs.length, expected.length);
    for (const [i, m] of msgs.entries()) assertMsg(m, expected[i] as VecMsg);
  });

  test('all frames (large ones included) survive any split or coalescing', () => {
    const stream = Buffer.concat(encodedFrames);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }),
        (cuts) => {
          const points = [...new Set(cuts)].sort((a, b) => a - b);
          const chunks: Uint8Array[] = [];
          let prev = 0;
          for (const p of points) {
            chunks.push(stream.subarray(prev, p));
            prev = p;
          }
          chunks.push(stream.subarray(prev));
          const msgs = readAll(chunks);
          assert.equal(msgs.length, file.frames.length);
          for (const [i, m] of msgs.entries()) assertMsg(m, (file.frames[i] as Frame).msg);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('encodeFrameParts', () => {
  test('the parts written one after the other are exactly encodeFrame; a large payload is not copied', () => {
    const sizes = [0, 1, 1000, SEPARATE_DATA_BYTES - 1, SEPARATE_DATA_BYTES, 300_000, 70_000_000];
    for (const n of sizes) {
      for (const id of [0, 1, 300, 2 ** 40]) {
        const data = Buffer.alloc(n, 7);
        if (n > 0) data[n - 1] = 9;
        const msg: ChatterMsg = {
          id,
          first: id === 0 ? 0 : id - 1,
          owner: id % 2 === 0,
          token: true,
          last: id !== 300,
          type: 'HatEventer.MsgRegisterReq',
          data,
        };
        const parts = encodeFrameParts(msg);
        assert.ok(Buffer.concat(parts).equals(encodeFrame(msg)), `${n} bytes, id ${id}`);
        if (n >= SEPARATE_DATA_BYTES) {
          assert.equal(parts.length, 2);
          assert.equal((parts[1] as Buffer).buffer, data.buffer, 'the payload itself');
        } else assert.equal(parts.length, 1);
      }
    }
  });
});
