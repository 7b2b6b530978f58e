/**
 * The chatter frame reader's recycled bodies (src/hat/chatter/framing.ts), reads into one reused
 * buffer, and the eventer codec's recycled encodings: a large buffer given back holds the next
 * large one, nothing else is ever reused, and a body never changes under its receiver when the
 * caller's chunk is overwritten.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SpareBuffer } from '../../src/common/spare-buffer.js';
import { FrameReader, RECYCLE_MIN_BYTES } from '../../src/hat/chatter/framing.js';
import { encodeRegisterReq, recycleEncoded } from '../../src/hat/eventer/codec.js';

/** A frame `[m][k][body]` for `body`, as chatter writes it. */
function frame(body: Uint8Array): Buffer {
  let n = body.length;
  const len: number[] = [];
  do {
    len.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  return Buffer.concat([Buffer.from([len.length, ...len]), body]);
}

function filled(bytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4096) b[i] = (i / 4096 + seed) & 0xff;
  return b;
}

/** Pushes `data` in chunks of `step` bytes; returns the bodies delivered. */
function pushInChunks(reader: FrameReader, data: Buffer, step = 64 * 1024): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += step) {
    reader.push(data.subarray(i, i + step), (b) => out.push(b));
  }
  return out;
}

describe('recycled frame bodies', () => {
  const big = RECYCLE_MIN_BYTES + 12_345;

  test('a large body given back holds the next large body that fits, with the right bytes', () => {
    const reader = new FrameReader(1 << 26);
    const first = filled(big, 1);
    const [a] = pushInChunks(reader, frame(first));
    assert.ok(a !== undefined && Buffer.from(a).equals(first));
    reader.recycle(a);
    assert.equal(reader.spareBytes, big);
    const second = filled(big - 100, 2);
    const [b] = pushInChunks(reader, frame(second));
    assert.ok(b !== undefined);
    assert.equal(b.buffer, a.buffer, 'the same memory');
    assert.ok(Buffer.from(b).equals(second));
    assert.equal(reader.spareBytes, 0, 'the spare is in use');
    // A larger body than the spare gets fresh memory.
    reader.recycle(b);
    const third = filled(big + 1, 3);
    const [c] = pushInChunks(reader, frame(third));
    assert.ok(c !== undefined && c.buffer !== a.buffer && Buffer.from(c).equals(third));
  });

  test('small bodies, and bodies that are views of the caller chunk, are never recycled', () => {
    const reader = new FrameReader(1 << 26);
    const small = filled(RECYCLE_MIN_BYTES - 1, 4);
    const [s] = pushInChunks(reader, frame(small));
    assert.ok(s !== undefined);
    reader.recycle(s);
    assert.equal(reader.spareBytes, 0);
    // The whole frame in one chunk: the body is a view of the caller's chunk, not the reader's.
    const whole = frame(filled(big, 5));
    let v: Uint8Array | undefined;
    reader.push(whole, (b) => {
      v = b;
    });
    assert.ok(v !== undefined && v.buffer === whole.buffer);
    reader.recycle(v);
    assert.equal(reader.spareBytes, 0);
  });

  test('dropSpare lets go of the memory; the next body gets fresh memory', () => {
    const reader = new FrameReader(1 << 26);
    const [a] = pushInChunks(reader, frame(filled(big, 6)));
    assert.ok(a !== undefined);
    reader.recycle(a);
    reader.dropSpare();
    assert.equal(reader.spareBytes, 0);
    const [b] = pushInChunks(reader, frame(filled(big, 7)));
    assert.ok(b !== undefined && b.buffer !== a.buffer);
  });
});

describe('transient chunks (one read buffer reused by every read)', () => {
  test('a body inside one chunk is a copy: overwriting the chunk leaves it unchanged', () => {
    const reader = new FrameReader(1 << 20, true);
    const chunk = frame(Buffer.from('hello chatter'));
    const out: Uint8Array[] = [];
    reader.push(chunk, (b) => out.push(b));
    chunk.fill(0);
    assert.equal(Buffer.from(out[0] as Uint8Array).toString(), 'hello chatter');
  });

  test('a body across chunks survives the chunk being overwritten after each push', () => {
    const reader = new FrameReader(1 << 24, true);
    const body = filled(300_000, 8);
    const data = frame(body);
    const scratch = Buffer.allocUnsafe(1000);
    const out: Uint8Array[] = [];
    for (let i = 0; i < data.length; i += scratch.length) {
      const n = data.copy(scratch, 0, i, i + scratch.length);
      reader.push(scratch.subarray(0, n), (b) => out.push(b));
      scratch.fill(0xee);
    }
    assert.equal(out.length, 1);
    assert.ok(Buffer.from(out[0] as Uint8Array).equals(body));
  });
});

describe('recycled register encodings', () => {
  const reg = (fill: number, bytes: number) => [
    {
      type: ['x'],
      sourceTimestamp: null,
      payload: { kind: 'binary' as const, type: 't', data: Buffer.alloc(bytes, fill) },
    },
  ];

  test('a large encoding given back holds the next one; small ones stay copies of their own', () => {
    const a = encodeRegisterReq(reg(1, 3 * RECYCLE_MIN_BYTES));
    recycleEncoded(a);
    const small = encodeRegisterReq(reg(2, 100));
    assert.notEqual(small.buffer, a.buffer, 'a small encoding is copied out');
    const b = encodeRegisterReq(reg(3, 2 * RECYCLE_MIN_BYTES));
    assert.equal(b.buffer, a.buffer, 'the same memory');
    assert.ok(b.equals(Buffer.from(encodeRegisterReq(reg(3, 2 * RECYCLE_MIN_BYTES)))));
    // Not given back: the next large encoding gets fresh memory.
    const c = encodeRegisterReq(reg(4, 2 * RECYCLE_MIN_BYTES));
    assert.notEqual(c.buffer, b.buffer);
    // Given back twice, or a buffer it never handed over: ignored.
    recycleEncoded(c);
    recycleEncoded(c);
    recycleEncoded(Buffer.alloc(4 * RECYCLE_MIN_BYTES));
    const d = encodeRegisterReq(reg(5, 2 * RECYCLE_MIN_BYTES));
    assert.equal(d.buffer, c.buffer);
    const e = encodeRegisterReq(reg(6, 2 * RECYCLE_MIN_BYTES));
    assert.notEqual(e.buffer, d.buffer);
  });
});

describe('SpareBuffer', () => {
  test('keeps the larger buffer, gives it once to a size it fits, and lets go on drop', () => {
    const spare = new SpareBuffer(60_000);
    const small = Buffer.alloc(10);
    const large = Buffer.alloc(20);
    spare.keep(large);
    spare.keep(small);
    assert.equal(spare.bytes, 20, 'a smaller buffer does not replace a larger one');
    assert.equal(spare.take(21), null, 'too small: still kept');
    assert.equal(spare.take(20), large);
    assert.equal(spare.take(1), null, 'taken once');
    spare.keep(small);
    spare.drop();
    assert.equal(spare.bytes, 0);
  });
});
