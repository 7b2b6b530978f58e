/**
 * Large JSON payload texts without large strings.
 *
 * A JSON payload received with a text of at least {@link LARGE_JSON_TEXT_BYTES} UTF-8 bytes is kept
 * as those bytes ({@link ReceivedJsonPayload}): its `text` is decoded only when asked for, and
 * re-encoding the event writes the bytes as they came. A payload to send may give its text in parts
 * ({@link PartsJsonPayload}, e.g. a head, a long base64 run and a tail), written one after another
 * into the request without being joined; a part may be the base64 of bytes ({@link Base64TextPart}),
 * encoded piece by piece straight into the request, never held as one string. {@link sameJsonText} compares any two payload texts as
 * UTF-8 bytes, chunk by chunk, so a received payload can be recognised as one we sent without
 * decoding it.
 */
import { isUtf8 } from 'node:buffer';
import {
  type Reader,
  readLength,
  SbsError,
  string,
  type Writer,
  writeInteger,
} from '../sbs/codec.js';
import type { EventPayloadJson } from './common.js';

/** Received texts of at least this many bytes are kept as bytes. */
export const LARGE_JSON_TEXT_BYTES = 64 * 1024;

/**
 * A JSON payload kept as the UTF-8 bytes received (already checked to be valid UTF-8). `bytes` is
 * a view on the received frame: frames are never reused (the chatter reader gives each body its
 * own buffer or a view on a socket chunk, neither written again). `text` decodes on each access.
 */
export class ReceivedJsonPayload implements EventPayloadJson {
  readonly kind = 'json' as const;
  constructor(readonly bytes: Uint8Array) {}
  get text(): string {
    const b = this.bytes;
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  }
}

/**
 * A part of a payload text that is the standard padded base64 of `bytes`: encoded while it is
 * written or compared, {@link BASE64_STEP} bytes at a time, so that a large model's base64 never
 * exists as one string (13.3 MB of garbage for a 10 MiB model). `bytes` must not change while the
 * payload is in use. `toString()` gives the whole text (for `parts.join('')`).
 */
export class Base64TextPart {
  constructor(readonly bytes: Uint8Array) {}
  /** Characters (= bytes: base64 is ASCII) of the text. */
  get length(): number {
    return Math.ceil(this.bytes.byteLength / 3) * 4;
  }
  /** The text of the `k`-th step: base64 of bytes `[k·STEP, (k+1)·STEP)`. */
  step(k: number): string {
    const b = this.bytes;
    const at = k * BASE64_STEP;
    return bufferOf(b).toString('base64', at, Math.min(b.byteLength, at + BASE64_STEP));
  }
  /** Number of steps. */
  get steps(): number {
    return Math.ceil(this.bytes.byteLength / BASE64_STEP);
  }
  toString(): string {
    return bufferOf(this.bytes).toString('base64');
  }
}

/**
 * Bytes encoded per step of a {@link Base64TextPart}: a multiple of 3 (each step's text is then
 * a whole piece of the whole text, without padding but at the end), small enough that each step's
 * string stays in V8's young generation (collected cheaply, never large-object garbage).
 */
export const BASE64_STEP = 3 * 16 * 1024;

function bufferOf(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** A part of a {@link PartsJsonPayload}'s text. */
export type TextPart = string | Base64TextPart;

/**
 * A JSON payload whose text is the concatenation of `parts` (no string part ending inside a
 * surrogate pair); `text` joins them on each access. `ascii`: the maker guarantees every part is
 * ASCII (as JSON with non-ASCII escaped and base64 are), so that writing and comparing the text
 * copies it byte for byte instead of measuring and encoding it as UTF-8 (a part that is not ASCII
 * would then be written wrong: only for texts made so). A {@link Base64TextPart} is ASCII either way.
 */
export class PartsJsonPayload implements EventPayloadJson {
  readonly kind = 'json' as const;
  constructor(
    readonly parts: readonly TextPart[],
    readonly ascii = false,
  ) {
    for (const p of parts) {
      if (typeof p !== 'string' && !(p instanceof Base64TextPart))
        throw new TypeError('parts must be strings or base64 parts');
    }
  }
  get text(): string {
    return this.parts.join('');
  }
}

/** Reads a json payload's text (a SBS String): as bytes when it is large, else as a string. */
export function readJsonPayload(r: Reader): EventPayloadJson {
  const at = r.pos;
  const n = readLength(r, string.name);
  if (n < LARGE_JSON_TEXT_BYTES) {
    r.pos = at;
    return { kind: 'json', text: string.read(r) };
  }
  const bytes = r.buf.subarray(r.pos, r.pos + n);
  if (!isUtf8(bytes)) throw new SbsError(string.name, at, 'invalid UTF-8');
  r.pos += n;
  return new ReceivedJsonPayload(bytes);
}

/** Writes a json payload's text as a SBS String: bytes as received, parts one by one, or the text. */
export function writeJsonPayload(w: Writer, p: EventPayloadJson): void {
  if (p instanceof ReceivedJsonPayload) {
    writeInteger(w, p.bytes.length, string.name);
    w.bytes(p.bytes);
    return;
  }
  if (p instanceof PartsJsonPayload) {
    writeParts(w, p.parts, p.ascii);
    return;
  }
  if (typeof p.text !== 'string') throw new TypeError('json payload text must be a string');
  string.write(w, p.text);
}

/** Writes the concatenation of `parts` as one SBS String (UTF-8, or byte for byte if `ascii`). */
function writeParts(w: Writer, parts: readonly TextPart[], ascii: boolean): void {
  let len = 0;
  for (const p of parts) {
    len += typeof p === 'string' && !ascii ? Buffer.byteLength(p, 'utf8') : p.length;
  }
  writeInteger(w, len, string.name);
  w.ensure(len);
  const encoding = ascii ? 'latin1' : 'utf8';
  for (const p of parts) {
    if (typeof p === 'string') w.pos += w.buf.write(p, w.pos, encoding);
    else for (let k = 0; k < p.steps; k++) w.pos += w.buf.write(p.step(k), w.pos, 'latin1');
  }
}

/**
 * The size of a payload's text for accounting, without decoding or joining it: its UTF-8 bytes
 * when kept as bytes, else its length in UTF-16 units (as `text.length`).
 */
export function jsonPayloadSize(p: EventPayloadJson): number {
  if (p instanceof ReceivedJsonPayload) return p.bytes.length;
  if (p instanceof PartsJsonPayload) {
    let n = 0;
    for (const part of p.parts) n += part.length;
    return n;
  }
  return p.text.length;
}

/** True when the two payloads have the same text, compared as UTF-8 bytes (no large string made). */
export function sameJsonText(a: EventPayloadJson, b: EventPayloadJson): boolean {
  if (a === b) return true;
  if (a instanceof ReceivedJsonPayload) return bytesEqualTo(a.bytes, b);
  if (b instanceof ReceivedJsonPayload) return bytesEqualTo(b.bytes, a);
  if (!(a instanceof PartsJsonPayload)) return textEqualsParts(a.text, partsOf(b));
  if (!(b instanceof PartsJsonPayload)) return textEqualsParts(b.text, a.parts);
  return a.text === b.text;
}

/**
 * `text === parts.join('')` without joining (a register response compared with what we sent).
 * Each part is compared with a slice of `text` by `===` (a block compare): `startsWith` at an
 * offset walks character by character, ≈ 8× slower on a 1 KiB model's payload.
 */
function textEqualsParts(text: string, parts: readonly TextPart[]): boolean {
  let pos = 0;
  for (const part of parts) {
    if (typeof part === 'string') {
      if (text.slice(pos, pos + part.length) !== part) return false;
      pos += part.length;
      continue;
    }
    for (let k = 0; k < part.steps; k++) {
      const s = part.step(k);
      if (text.slice(pos, pos + s.length) !== s) return false;
      pos += s.length;
    }
  }
  return pos === text.length;
}

function partsOf(p: EventPayloadJson): readonly TextPart[] {
  return p instanceof PartsJsonPayload ? p.parts : [p.text];
}

function bytesEqualTo(bytes: Uint8Array, p: EventPayloadJson): boolean {
  if (p instanceof ReceivedJsonPayload) return Buffer.compare(bytes, p.bytes) === 0;
  const ascii = p instanceof PartsJsonPayload && p.ascii;
  let pos = 0;
  for (const part of partsOf(p)) {
    if (typeof part === 'string') {
      pos = ascii ? matchAscii(bytes, pos, part) : matchString(bytes, pos, part);
      if (pos < 0) return false;
      continue;
    }
    for (let k = 0; k < part.steps && pos >= 0; k++) pos = matchAscii(bytes, pos, part.step(k));
    if (pos < 0) return false;
  }
  return pos === bytes.length;
}

const CHUNK_CHARS = 16 * 1024;
let scratch: Buffer | null = null;

/** {@link matchString} for an ASCII `s`: its characters are its bytes (copied, not encoded). */
function matchAscii(bytes: Uint8Array, pos: number, s: string): number {
  if (pos + s.length > bytes.length) return -1;
  scratch ??= Buffer.allocUnsafe(CHUNK_CHARS * 3);
  const step = scratch.length;
  for (let i = 0; i < s.length; i += step) {
    const n = scratch.write(i === 0 && s.length <= step ? s : s.slice(i, i + step), 0, 'latin1');
    if (Buffer.compare(scratch.subarray(0, n), bytes.subarray(pos, pos + n)) !== 0) return -1;
    pos += n;
  }
  return pos;
}

/** Matches `s` as UTF-8 against `bytes` from `pos`: the position after it, or -1 on a difference. */
function matchString(bytes: Uint8Array, pos: number, s: string): number {
  scratch ??= Buffer.allocUnsafe(CHUNK_CHARS * 3);
  let i = 0;
  while (i < s.length) {
    let end = Math.min(s.length, i + CHUNK_CHARS);
    // Never split a surrogate pair between two chunks.
    const last = s.charCodeAt(end - 1);
    if (end < s.length && last >= 0xd800 && last < 0xdc00) end--;
    const n = scratch.write(end - i === s.length ? s : s.slice(i, end), 0, 'utf8');
    if (pos + n > bytes.length) return -1;
    if (Buffer.compare(scratch.subarray(0, n), bytes.subarray(pos, pos + n)) !== 0) return -1;
    pos += n;
    i = end;
  }
  return pos;
}
