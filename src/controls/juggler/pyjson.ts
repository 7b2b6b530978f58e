/**
 * JSON text in the format of Python's `json.dumps` with default settings, which is what AIMM's
 * server (and hat-juggler) put on the wire: `", "` and `": "` separators, no newlines, ASCII only
 * (everything outside 0x20..0x7e escaped as lowercase `\uXXXX`, astral characters as surrogate
 * pairs), exponents with two digits (`1e-07`). Objects keep their insertion order, so callers build
 * them in AIMM's key order. Producing the same text as AIMM keeps 0.7 segment boundaries identical
 * to the recordings.
 *
 * Built by string concatenation (V8 ropes): measured faster than collecting parts, than
 * post-processing `JSON.stringify`'s output, and, for long base64 strings, than `JSON.stringify`
 * itself (bench/juggler.ts).
 */
import { pythonJsonString } from '../../common/python-json.js';

/** A JSON string literal as Python writes it. */
export const pyString = pythonJsonString;

/** A number as Python's json writes it (integers, and floats in exponent form). */
export function pyNumber(n: number): string {
  // Ids, revisions, sizes: JavaScript and Python write safe integers alike.
  if (Number.isSafeInteger(n)) return String(n);
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return 'Infinity';
  if (n === Number.NEGATIVE_INFINITY) return '-Infinity';
  return String(n).replace(/e([+-])(\d)$/, 'e$10$2');
}

/**
 * Serializes like `json.dumps(value)`; `undefined` object members are skipped (as JSON.stringify).
 * Array elements are joined a chunk at a time ({@link JoinedTexts}); the text itself may be a rope.
 */
export function pyDumps(value: unknown): string {
  return dumps(value);
}

/**
 * `s` as one flat string. A text built by `+=` is a rope (a tree of the pieces), and its pieces
 * stay alive as long as it does: the state diff of a busy flush, thousands of entries of dozens of
 * pieces each, survived the young generation's collections and made them copy it. Converting a
 * rope to a number makes V8 flatten it in place (the `flatstr` trick), after which the pieces are
 * garbage; the result of the conversion is not needed.
 */
export function flatten(s: string): string {
  Number(s);
  return s;
}

function dumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
      return pyString(value);
    case 'number':
      return pyNumber(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw new TypeError(`cannot serialize a ${typeof value} as JSON`);
  }
  if (Array.isArray(value)) {
    // Joined a chunk at a time: a long array (a state diff, a list of models) never becomes one
    // huge rope, nor thousands of strings held until the end.
    const texts = new JoinedTexts();
    for (let i = 0; i < value.length; i++) texts.push(dumps(value[i]));
    return `[${texts.join()}]`;
  }
  const obj = value as Record<string, unknown>;
  let out = '{';
  let sep = '';
  // Plain objects only (what this module builds, or JSON.parse made): no inherited members.
  for (const key in obj) {
    const v = obj[key];
    if (v === undefined) continue;
    out += sep + keyText(key) + dumps(v);
    sep = ', ';
  }
  return `${out}}`;
}

/** Member names seen, as `"name": ` (a message has a few names, repeated in every message). */
const keyTexts = new Map<string, string>();
/** Names from clients' data may be anything: only so many are kept. */
const KEY_TEXTS_LIMIT = 4096;

function keyText(key: string): string {
  let t = keyTexts.get(key);
  if (t === undefined) {
    t = `${pyString(key)}: `;
    if (keyTexts.size < KEY_TEXTS_LIMIT) keyTexts.set(key, t);
  }
  return t;
}

/**
 * Texts joined with `", "`, a chunk at a time: tens of thousands of small strings held until one
 * final join survive the young generation's collections and are copied by each of them (half the
 * time of a 60 000-model state went there); joined by the thousand, only a chunk's pieces live.
 */
export class JoinedTexts {
  private readonly chunks: string[] = [];
  private pieces: string[] = [];

  push(text: string): void {
    this.pieces.push(text);
    if (this.pieces.length === CHUNK) {
      this.chunks.push(this.pieces.join(', '));
      this.pieces = [];
    }
  }

  join(): string {
    if (this.pieces.length > 0 || this.chunks.length === 0)
      this.chunks.push(this.pieces.join(', '));
    this.pieces = [];
    return this.chunks.length === 1 ? (this.chunks[0] as string) : this.chunks.join(', ');
  }
}

const CHUNK = 1024;
