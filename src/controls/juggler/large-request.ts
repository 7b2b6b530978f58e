/**
 * Large requests read from their bytes. A model sent through Juggler is a request whose
 * `data.instance_b64` holds the model as base64: for a 10 MiB model, 13.3 MB of a message that is
 * otherwise a few dozen bytes. Read as text, the message is decoded as UTF-8 into a string,
 * scanned and copied again by `JSON.parse`, and the base64 checked character by character.
 *
 * For a message that is all ASCII, {@link parseLargeRequest} finds that member by a shallow scan
 * of the bytes (the top-level object and `data`; strings skipped with `indexOf`), decodes the
 * base64 straight from the bytes, piece by piece (no string of it is made), and gives only the
 * rest of the message to {@link parseRequest}. The member's text is made again from the decoded
 * bytes only if something reads it (AIMM's full reply echoes it; a `meta_only` reply does not).
 * The result is exactly what `parseRequest` gives for the message's text, errors included:
 * whenever the shortcut cannot prove that (an escaped or repeated key, a member that is not
 * canonical base64, anything unexpected), the whole text goes through `parseRequest`.
 */
import { decodeStrictBase64Ascii } from './base64.js';
import { parseRequest, type Request } from './messages.js';

/** `instance_b64` values shorter than this are left to `JSON.parse` (nothing to gain). */
export const LARGE_VALUE_BYTES = 64 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

/** Decoded `instance_b64` values of requests read by {@link parseLargeRequest}, by their `data`. */
const decodedInstances = new WeakMap<object, Buffer>();

/**
 * The bytes of `data.instance_b64` when {@link parseLargeRequest} decoded them already, else
 * null. Handed over once: a second call gives null.
 */
export function decodedInstanceOf(data: object): Buffer | null {
  const bytes = decodedInstances.get(data);
  if (bytes === undefined) return null;
  decodedInstances.delete(data);
  return bytes;
}

/**
 * `parseRequest(text)` for a message whose bytes are all ASCII (`text` is then their Latin-1
 * reading): same result, same errors. A decoded `data.instance_b64` is a property computed on
 * first read from the decoded bytes (canonical base64 is exactly their encoding).
 */
export function parseLargeRequest(bytes: Buffer): Request {
  /** The message as text, parsed as any message is (whenever the shortcut cannot be proved). */
  const whole = () => parseRequest(bytes.toString('latin1'));
  const span = instanceSpan(bytes);
  if (span === null) return whole();
  // Canonical base64 is valid JSON string content (no control characters, quotes or escapes), so
  // the message with this member emptied fails or passes exactly as the whole message does.
  const decoded = decodeStrictBase64Ascii(bytes, span.start, span.end);
  if (decoded === null) return whole();
  const req = parseRequest(
    bytes.toString('latin1', 0, span.start) + bytes.toString('latin1', span.end),
  );
  const data = req.data as Record<string, unknown>;
  // (The scan saw `data` and `instance_b64` once each, so this is the member it emptied.)
  if (typeof data !== 'object' || data === null || data.instance_b64 !== '') return whole();
  let text: string | null = null;
  Object.defineProperty(data, 'instance_b64', {
    enumerable: true,
    configurable: true,
    get: () => {
      text ??= decoded.toString('base64');
      return text;
    },
    set: (value: unknown) => {
      Object.defineProperty(data, 'instance_b64', {
        value,
        enumerable: true,
        configurable: true,
        writable: true,
      });
    },
  });
  decodedInstances.set(data, decoded);
  return req;
}

interface Span {
  start: number;
  end: number;
}

/**
 * Where the content of `data.instance_b64` is, when the message is an object whose `data` member
 * (once, unescaped) is an object whose `instance_b64` member (once, unescaped) is a string of at
 * least {@link LARGE_VALUE_BYTES} bytes (between its quotes, as sent). Null otherwise, or for
 * anything malformed (`JSON.parse` will say what).
 */
export function instanceSpan(b: Buffer): Span | null {
  let found: Span | null = null;
  let sawData = false;
  const end = scanObject(b, skipWs(b, 0), (key, at) => {
    if (key !== 'data') return skipValue(b, at);
    if (sawData) return -1;
    sawData = true;
    if (b[at] !== LBRACE) return skipValue(b, at);
    let sawInstance = false;
    return scanObject(b, at, (k, v) => {
      if (k !== 'instance_b64') return skipValue(b, v);
      if (sawInstance) return -1;
      sawInstance = true;
      if (b[v] !== QUOTE) return skipValue(b, v);
      const close = stringEnd(b, v);
      if (close < 0) return -1;
      const start = v + 1;
      const stop = close - 1;
      // (An escape inside is left to the base64 check: a backslash is not base64.)
      if (stop - start >= LARGE_VALUE_BYTES) found = { start, end: stop };
      return close;
    });
  });
  if (end < 0 || skipWs(b, end) !== b.length) return null;
  return found;
}

/**
 * Scans the object at `at`: calls `member(key, valueAt)` for each member, which returns where the
 * value ends (-1: stop). Returns where the object ends, or -1 (malformed, or a key with an escape).
 */
function scanObject(
  b: Buffer,
  at: number,
  member: (key: string, valueAt: number) => number,
): number {
  if (b[at] !== LBRACE) return -1;
  let i = skipWs(b, at + 1);
  if (b[i] === RBRACE) return i + 1;
  for (;;) {
    if (b[i] !== QUOTE) return -1;
    const keyEnd = stringEnd(b, i);
    if (keyEnd < 0) return -1;
    // An escaped key might spell a name the scan looks for: leave the message to JSON.parse.
    if (b.subarray(i + 1, keyEnd - 1).indexOf(BACKSLASH) >= 0) return -1;
    const key = b.toString('latin1', i + 1, keyEnd - 1);
    i = skipWs(b, keyEnd);
    if (b[i] !== COLON) return -1;
    i = member(key, skipWs(b, i + 1));
    if (i < 0) return -1;
    i = skipWs(b, i);
    if (b[i] === RBRACE) return i + 1;
    if (b[i] !== COMMA) return -1;
    i = skipWs(b, i + 1);
  }
}

/** Where the value at `at` ends (not validated: JSON.parse does that), or -1. */
function skipValue(b: Buffer, at: number): number {
  const c = b[at];
  if (c === QUOTE) return stringEnd(b, at);
  if (c === LBRACE || c === LBRACKET) {
    let depth = 0;
    let i = at;
    while (i < b.length) {
      const x = b[i] as number;
      if (x === QUOTE) {
        i = stringEnd(b, i);
        if (i < 0) return -1;
        continue;
      }
      if (x === LBRACE || x === LBRACKET) depth++;
      else if (x === RBRACE || x === RBRACKET) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  // A number or a literal: up to the next delimiter.
  let i = at;
  while (i < b.length) {
    const x = b[i] as number;
    if (x === COMMA || x === RBRACE || x === RBRACKET || isWs(x)) break;
    i++;
  }
  return i === at ? -1 : i;
}

/** Where the string starting with the quote at `at` ends (after its closing quote), or -1. */
function stringEnd(b: Buffer, at: number): number {
  let i = at + 1;
  for (;;) {
    const close = b.indexOf(QUOTE, i);
    if (close < 0) return -1;
    const backslash = b.subarray(i, close).indexOf(BACKSLASH);
    if (backslash < 0) return close + 1;
    // Skip the escaped character (it may be a quote), then look again.
    i += backslash + 2;
    if (i > b.length) return -1;
  }
}

function isWs(x: number): boolean {
  return x === 0x20 || x === 0x0a || x === 0x0d || x === 0x09;
}

function skipWs(b: Buffer, at: number): number {
  let i = at;
  while (i < b.length && isWs(b[i] as number)) i++;
  return i;
}
