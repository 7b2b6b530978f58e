/**
 * SBS (Simple Binary Serialization, hat-sbs 0.7.6) codec driven by declarative type definitions.
 *
 * Types are values built with the functions of this module (`record`, `choice`, `array`, ...); each
 * knows how to write itself into a {@link Writer} and read itself from a {@link Reader}. Value forms:
 *
 * | SBS type      | JS value                                                                 |
 * |---------------|--------------------------------------------------------------------------|
 * | None          | `null`                                                                   |
 * | Boolean       | `boolean`                                                                |
 * | Integer       | `number` when it is a safe integer, otherwise `bigint` (either accepted)  |
 * | Float         | `number`                                                                 |
 * | String        | `string`                                                                 |
 * | Bytes         | `Uint8Array`                                                             |
 * | Array(T)      | `T[]`                                                                    |
 * | Record{...}   | an object keyed by field name                                            |
 * | Choice{...}   | a tuple `[entryName, value]`                                             |
 * | Optional(T)   | `T \| null`; when T is None or an Optional, the choice form `['none', null] \| ['value', v]` |
 *
 * Decoding is strict: it never reads past its input, and any truncated or malformed input throws an
 * {@link SbsError} naming the type and the byte offset.
 */

import { isUtf8 } from 'node:buffer';

export type Int = number | bigint;

/** Decoding or encoding failure, naming the SBS type and the byte offset. */
export class SbsError extends Error {
  constructor(
    readonly typeName: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`SBS ${typeName} at byte ${offset}: ${reason}`);
    this.name = 'SbsError';
  }
}

const MAX_INTEGER_BYTES = 64;
/** Upper bound of elements for arrays whose elements may encode to zero bytes (e.g. Array(None)). */
const MAX_ZERO_WIDTH_COUNT = 1 << 20;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Short strings decode faster by hand when they are ASCII (the common case for type names). */
const SHORT_STRING = 48;

/**
 * Strict UTF-8 decoding (invalid input throws): an ASCII fast path for short strings, native
 * validation plus Buffer's decoder for the rest.
 */
function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= SHORT_STRING) {
    let out = '';
    for (let i = start; i < end; i++) {
      const c = buf[i] as number;
      if (c >= 0x80) return utf8Decoder.decode(buf.subarray(start, end));
      out += String.fromCharCode(c);
    }
    return out;
  }
  const b = buf.subarray(start, end);
  if (!isUtf8(b)) throw new TypeError('invalid UTF-8');
  return Buffer.from(b.buffer, b.byteOffset, n).toString('utf8');
}

/** A growable output buffer. */
export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** The written bytes (a view on the internal buffer: copy it if the writer is reused). */
  result(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** A bounded input cursor. */
export class Reader {
  pos: number;
  readonly end: number;
  /** The input as a plain Uint8Array view (views of it are cheaper to make than Buffer views). */
  readonly buf: Uint8Array;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf =
      buf.constructor === Uint8Array
        ? buf
        : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  byte(typeName: string): number {
    if (this.pos >= this.end) throw new SbsError(typeName, this.pos, 'unexpected end of input');
    return this.buf[this.pos++] as number;
  }

  take(typeName: string, n: number): Uint8Array {
    if (n > this.end - this.pos) {
      throw new SbsError(typeName, this.pos, `needs ${n} bytes, only ${this.end - this.pos} left`);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** An SBS type: encodes values of `T` and decodes them back. */
export abstract class SbsType<T> {
  /** A readable name for error messages, e.g. `Integer`, `HatEventer.Timestamp`, `Array(String)`. */
  abstract readonly name: string;
  /** The smallest number of bytes a value of this type can encode to. */
  abstract readonly minSize: number;
  abstract write(w: Writer, value: T): void;
  abstract read(r: Reader): T;
}

export type Infer<X> = X extends SbsType<infer T> ? T : never;

/** Encodes `value` as `type`. */
export function encode<T>(type: SbsType<T>, value: T, writer = new Writer()): Buffer {
  writer.pos = 0;
  type.write(writer, value);
  return Buffer.from(writer.result());
}

/**
 * Decodes `data` as `type`. Trailing bytes after the value are an error unless `allowTrailing` is set
 * (the reference Python decoder ignores them; hat-event never sends them).
 */
export function decode<T>(type: SbsType<T>, data: Uint8Array, allowTrailing = false): T {
  const r = new Reader(data);
  const value = type.read(r);
  if (!allowTrailing && r.pos !== r.end) {
    throw new SbsError(type.name, r.pos, `${r.end - r.pos} trailing bytes after the value`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Integer varint: big-endian 7-bit groups of the two's complement value, high bit set on the LAST
// byte only.

const SMALL_LIMIT = 2 ** 46; // |v| below this can take another 7-bit shift as a float exactly

export function writeInteger(w: Writer, v: Int, typeName = 'Integer'): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) {
      throw new SbsError(typeName, w.pos, `not an integer or not exactly representable: ${v}`);
    }
    if (v >= -0x40 && v < 0x40) {
      w.byte((v & 0x7f) | 0x80);
      return;
    }
    if (v >= -0x80000000 && v <= 0x7fffffff) {
      writeInt32(w, v);
      return;
    }
    writeBigInteger(w, BigInt(v));
    return;
  }
  if (typeof v !== 'bigint')
    throw new SbsError(typeName, w.pos, `expected an integer, got ${typeof v}`);
  if (v >= -0x80000000n && v <= 0x7fffffffn) {
    writeInt32(w, Number(v));
    return;
  }
  writeBigInteger(w, v);
}

/** Writes a 32-bit signed integer straight into the output (no temporary buffer). */
function writeInt32(w: Writer, v: number): void {
  // Number of 7-bit groups: the smallest n with -2^(7n-1) <= v < 2^(7n-1).
  let n = 1;
  let lim = 0x40;
  while (v >= lim || v < -lim) {
    n++;
    lim *= 128;
  }
  w.ensure(n);
  const buf = w.buf;
  let pos = w.pos + n - 1;
  buf[pos] = (v & 0x7f) | 0x80;
  for (let i = 1; i < n; i++) {
    v >>= 7;
    buf[--pos] = v & 0x7f;
  }
  w.pos += n;
}

function writeBigInteger(w: Writer, v: bigint): void {
  const out: number[] = [];
  let first = true;
  for (;;) {
    let t = Number(v & 0x7fn);
    if (first) {
      t |= 0x80;
      first = false;
    }
    out.push(t);
    v >>= 7n;
    if ((v === 0n && (t & 0x40) === 0) || (v === -1n && (t & 0x40) !== 0)) break;
  }
  out.reverse();
  w.bytes(Uint8Array.from(out));
}

export function readInteger(r: Reader, typeName = 'Integer'): Int {
  const start = r.pos;
  const end = r.end;
  const buf = r.buf;
  if (start >= end) throw new SbsError(typeName, start, 'unexpected end of input');
  let i = start;
  let b = buf[i] as number;
  let v = (b & 0x40) !== 0 ? -1 : 0;
  let big: bigint | null = null;
  for (;;) {
    if (big === null) {
      if (v >= SMALL_LIMIT || v <= -SMALL_LIMIT) {
        big = BigInt(v);
        big = (big << 7n) | BigInt(b & 0x7f);
      } else {
        v = v * 128 + (b & 0x7f);
      }
    } else {
      big = (big << 7n) | BigInt(b & 0x7f);
    }
    if ((b & 0x80) !== 0) break;
    i++;
    if (i - start >= MAX_INTEGER_BYTES) {
      throw new SbsError(typeName, start, `integer longer than ${MAX_INTEGER_BYTES} bytes`);
    }
    if (i >= end) throw new SbsError(typeName, i, 'unexpected end of input inside an integer');
    b = buf[i] as number;
  }
  r.pos = i + 1;
  if (big === null) return v;
  if (big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(big);
  return big;
}

/** Reads a Choice index (also an Optional's: 0 none, 1 value) and checks it names one of `count` entries. */
export function readChoiceIndex(r: Reader, typeName: string, count: number): number {
  const at = r.pos;
  const i = readInteger(r, typeName);
  if (typeof i !== 'number' || i < 0 || i >= count) {
    throw new SbsError(typeName, at, `choice index ${i} out of range 0..${count - 1}`);
  }
  return i;
}

/** Reads a non-negative length/count/index that must fit a safe number. */
function readSize(r: Reader, typeName: string, what: string): number {
  const at = r.pos;
  const v = readInteger(r, typeName);
  if (typeof v !== 'number' || v < 0) throw new SbsError(typeName, at, `invalid ${what} ${v}`);
  return v;
}

/**
 * Reads the length of a String or Bytes value and checks that that many bytes follow; the reader
 * is left at the first of them.
 */
export function readLength(r: Reader, typeName: string): number {
  const at = r.pos;
  const n = readSize(r, typeName, 'length');
  if (n > r.remaining) {
    throw new SbsError(
      typeName,
      at,
      `length ${n} runs past the end of input (${r.remaining} left)`,
    );
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Primitive types

class NoneType extends SbsType<null> {
  readonly name = 'None';
  readonly minSize = 0;
  write(): void {}
  read(): null {
    return null;
  }
}

class BooleanType extends SbsType<boolean> {
  readonly name = 'Boolean';
  readonly minSize = 1;
  write(w: Writer, v: boolean): void {
    w.byte(v ? 1 : 0);
  }
  read(r: Reader): boolean {
    return r.byte(this.name) !== 0;
  }
}

class IntegerType extends SbsType<Int> {
  readonly name = 'Integer';
  readonly minSize = 1;
  write(w: Writer, v: Int): void {
    writeInteger(w, v);
  }
  read(r: Reader): Int {
    return readInteger(r);
  }
}

class FloatType extends SbsType<number> {
  readonly name = 'Float';
  readonly minSize = 8;
  write(w: Writer, v: number): void {
    if (typeof v !== 'number')
      throw new SbsError(this.name, w.pos, `expected a number, got ${typeof v}`);
    w.ensure(8);
    w.buf.writeDoubleBE(v, w.pos);
    w.pos += 8;
  }
  read(r: Reader): number {
    const b = r.take(this.name, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false);
  }
}

class BytesType extends SbsType<Uint8Array> {
  readonly name = 'Bytes';
  readonly minSize = 1;
  write(w: Writer, v: Uint8Array): void {
    if (!(v instanceof Uint8Array)) throw new SbsError(this.name, w.pos, 'expected a Uint8Array');
    writeInteger(w, v.length, this.name);
    w.bytes(v);
  }
  read(r: Reader): Uint8Array {
    const n = readLength(r, this.name);
    // A copy: decoded values must not pin (or alias) the receive buffer.
    const start = r.pos;
    r.pos += n;
    return r.buf.slice(start, start + n);
  }
}

class StringType extends SbsType<string> {
  readonly name = 'String';
  readonly minSize = 1;
  write(w: Writer, v: string): void {
    if (typeof v !== 'string')
      throw new SbsError(this.name, w.pos, `expected a string, got ${typeof v}`);
    const n = v.length;
    if (n < 64) {
      // Short ASCII strings (type segments, names): one length byte and the characters as is.
      w.ensure(n + 1);
      const buf = w.buf;
      const start = w.pos;
      let ascii = true;
      for (let i = 0; i < n; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        buf[start + 1 + i] = c;
      }
      if (ascii) {
        buf[start] = 0x80 | n;
        w.pos = start + 1 + n;
        return;
      }
    }
    const len = Buffer.byteLength(v, 'utf8');
    writeInteger(w, len, this.name);
    w.ensure(len);
    w.buf.write(v, w.pos, len, 'utf8');
    w.pos += len;
  }
  read(r: Reader): string {
    const at = r.pos;
    const n = readLength(r, this.name);
    const start = r.pos;
    r.pos += n;
    try {
      return decodeUtf8(r.buf, start, start + n);
    } catch {
      throw new SbsError(this.name, at, 'invalid UTF-8');
    }
  }
}

export const none: SbsType<null> = new NoneType();
export const boolean: SbsType<boolean> = new BooleanType();
export const integer: SbsType<Int> = new IntegerType();
export const float: SbsType<number> = new FloatType();
export const bytes: SbsType<Uint8Array> = new BytesType();
export const string: SbsType<string> = new StringType();

// ---------------------------------------------------------------------------------------------
// Composite types

class ArrayType<T> extends SbsType<T[]> {
  readonly name: string;
  readonly minSize = 1;
  constructor(readonly item: SbsType<T>) {
    super();
    this.name = `Array(${item.name})`;
  }
  write(w: Writer, v: T[]): void {
    if (!Array.isArray(v)) throw new SbsError(this.name, w.pos, 'expected an array');
    writeInteger(w, v.length, this.name);
    for (const x of v) this.item.write(w, x);
  }
  read(r: Reader): T[] {
    const at = r.pos;
    const n = readSize(r, this.name, 'count');
    const min = this.item.minSize;
    if (min > 0 ? n * min > r.remaining : n > MAX_ZERO_WIDTH_COUNT) {
      throw new SbsError(this.name, at, `count ${n} cannot fit in the ${r.remaining} bytes left`);
    }
    const out = new Array<T>(n);
    for (let i = 0; i < n; i++) out[i] = this.item.read(r);
    return out;
  }
}

export type RecordFields = { readonly [name: string]: SbsType<unknown> };
export type RecordValue<F extends RecordFields> = { -readonly [K in keyof F]: Infer<F[K]> };

class RecordType<F extends RecordFields> extends SbsType<RecordValue<F>> {
  readonly minSize: number;
  private readonly keys: string[];
  private readonly types: SbsType<unknown>[];
  constructor(
    readonly name: string,
    readonly fields: F,
  ) {
    super();
    const entries = Object.entries(fields);
    if (entries.length === 0) throw new Error(`record ${name} needs at least one field`);
    this.keys = entries.map(([k]) => k);
    this.types = entries.map(([, t]) => t);
    this.minSize = entries.reduce((s, [, t]) => s + t.minSize, 0);
  }
  write(w: Writer, v: RecordValue<F>): void {
    if (typeof v !== 'object' || v === null)
      throw new SbsError(this.name, w.pos, 'expected an object');
    const obj = v as Record<string, unknown>;
    const { keys, types } = this;
    for (let i = 0; i < keys.length; i++) {
      (types[i] as SbsType<unknown>).write(w, obj[keys[i] as string]);
    }
  }
  read(r: Reader): RecordValue<F> {
    const out: Record<string, unknown> = {};
    const { keys, types } = this;
    for (let i = 0; i < keys.length; i++)
      out[keys[i] as string] = (types[i] as SbsType<unknown>).read(r);
    return out as RecordValue<F>;
  }
}

export type ChoiceEntries = { readonly [name: string]: SbsType<unknown> };
export type ChoiceValue<E extends ChoiceEntries> = {
  [K in keyof E & string]: [K, Infer<E[K]>];
}[keyof E & string];

class ChoiceType<E extends ChoiceEntries> extends SbsType<ChoiceValue<E>> {
  readonly minSize = 1;
  private readonly list: [string, SbsType<unknown>][];
  private readonly index = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly entries: E,
  ) {
    super();
    this.list = Object.entries(entries);
    if (this.list.length === 0) throw new Error(`choice ${name} needs at least one entry`);
    for (const [i, [k]] of this.list.entries()) this.index.set(k, i);
  }
  write(w: Writer, v: ChoiceValue<E>): void {
    if (!Array.isArray(v) || v.length !== 2) {
      throw new SbsError(this.name, w.pos, 'expected a [name, value] pair');
    }
    const i = this.index.get(v[0]);
    if (i === undefined)
      throw new SbsError(this.name, w.pos, `unknown entry ${JSON.stringify(v[0])}`);
    writeInteger(w, i, this.name);
    (this.list[i] as [string, SbsType<unknown>])[1].write(w, v[1]);
  }
  read(r: Reader): ChoiceValue<E> {
    const i = readChoiceIndex(r, this.name, this.list.length);
    const [k, t] = this.list[i] as [string, SbsType<unknown>];
    return [k, t.read(r)] as ChoiceValue<E>;
  }
}

class OptionalType<T> extends SbsType<T | null> {
  readonly name: string;
  readonly minSize = 1;
  constructor(readonly value: SbsType<T>) {
    super();
    this.name = `Optional(${value.name})`;
  }
  write(w: Writer, v: T | null): void {
    if (v === null || v === undefined) {
      w.byte(0x80);
    } else {
      w.byte(0x81);
      this.value.write(w, v);
    }
  }
  read(r: Reader): T | null {
    return readChoiceIndex(r, this.name, 2) === 0 ? null : this.value.read(r);
  }
}

/** Named alias of another type (keeps the name in error messages). */
class AliasType<T> extends SbsType<T> {
  constructor(
    readonly name: string,
    readonly target: SbsType<T>,
  ) {
    super();
  }
  get minSize(): number {
    return this.target.minSize;
  }
  write(w: Writer, v: T): void {
    this.target.write(w, v);
  }
  read(r: Reader): T {
    return this.target.read(r);
  }
}

/** A type defined later (for recursive or forward references in schemas). */
class LazyType<T> extends SbsType<T> {
  private resolved: SbsType<T> | undefined;
  constructor(
    readonly name: string,
    private readonly get: () => SbsType<T>,
  ) {
    super();
  }
  private get target(): SbsType<T> {
    if (this.resolved === undefined) this.resolved = this.get();
    return this.resolved;
  }
  get minSize(): number {
    return this.resolved?.minSize ?? 0;
  }
  write(w: Writer, v: T): void {
    this.target.write(w, v);
  }
  read(r: Reader): T {
    return this.target.read(r);
  }
}

export function array<T>(item: SbsType<T>): SbsType<T[]> {
  return new ArrayType(item);
}

export function record<F extends RecordFields>(name: string, fields: F): SbsType<RecordValue<F>> {
  return new RecordType(name, fields);
}

export function choice<E extends ChoiceEntries>(name: string, entries: E): SbsType<ChoiceValue<E>> {
  return new ChoiceType(name, entries);
}

/**
 * `Optional(T)`: `T | null`. When T is None or itself an Optional, `null` would be ambiguous, so the
 * generic choice form (`['none', null]` / `['value', v]`) is used instead.
 */
export function optional<T>(value: SbsType<T>): SbsType<T | null> {
  const inner = value instanceof AliasType ? unalias(value) : value;
  if (inner === none || inner instanceof OptionalType || isOptionalChoice(inner)) {
    return choice(`Optional(${value.name})`, { none, value }) as unknown as SbsType<T | null>;
  }
  return new OptionalType(value);
}

/** Any Choice whose entries are exactly `none: None, value: T`, in that order, counts as an Optional. */
function isOptionalChoice(t: SbsType<unknown>): boolean {
  if (!(t instanceof ChoiceType)) return false;
  const names = Object.keys(t.entries);
  return (
    names.length === 2 &&
    names[0] === 'none' &&
    names[1] === 'value' &&
    unalias(t.entries.none) === none
  );
}

function unalias(t: SbsType<unknown>): SbsType<unknown> {
  let x = t;
  while (x instanceof AliasType) x = x.target;
  return x;
}

export function alias<T>(name: string, target: SbsType<T>): SbsType<T> {
  return new AliasType(name, target);
}

export function lazy<T>(name: string, get: () => SbsType<T>): SbsType<T> {
  return new LazyType(name, get);
}
