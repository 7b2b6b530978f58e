/**
 * JSON payload texts as the Hat event server treats them.
 *
 * The server parses every json payload with Python's `json.loads` and re-emits it with
 * `json.dumps(value, allow_nan=False)`; a text it cannot parse closes the connection, and a
 * non-finite number (NaN, Infinity, 1e400) even kills the real server. This module reproduces
 * both steps at token level (no `JSON.parse`, so key order, big integers and the `1.0` form are
 * kept):
 *
 * - {@link pythonJsonDumps}: the exact text the server sends back;
 * - {@link checkJsonText}: throws {@link JsonTextError} for any text the server would refuse;
 * - {@link compactJson}: the same value as compact standard JSON (numbers kept verbatim).
 */

import { pythonJsonString } from '../../common/python-json.js';

export { pythonJsonString };

export class JsonTextError extends Error {
  /** UTF-16 offset in the text where the problem was found. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`invalid JSON payload at ${offset}: ${message}`);
    this.name = 'JsonTextError';
    this.offset = offset;
  }
}

const trusted = new WeakSet<object>();

/** Marks a payload whose text is known valid (made by `JSON.stringify`), so senders skip the check. */
export function markTrustedJsonPayload<T extends object>(payload: T): T {
  trusted.add(payload);
  return payload;
}

export function isTrustedJsonPayload(payload: object): boolean {
  return trusted.has(payload);
}

/** Deeper nesting is refused (Python's recursion limit would refuse it too). */
export const MAX_JSON_DEPTH = 1000;

type Node =
  | { k: 'str'; v: string }
  | { k: 'int'; text: string }
  | { k: 'float'; v: number; text: string }
  | { k: 'lit'; text: 'true' | 'false' | 'null' }
  | { k: 'arr'; items: Node[] }
  | { k: 'obj'; entries: Map<string, Node> };

// Runs of string characters needing no attention: not a quote, backslash or control character.
// biome-ignore lint/complexity/useRegexLiterals: the literal would trip noControlCharactersInRegex
const PLAIN_RUN = new RegExp('[^"\\\\\\u0000-\\u001f]*', 'y');
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const WS = /[ \t\n\r]*/y;

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(msg: string, at = this.i): never {
    throw new JsonTextError(msg, at);
  }

  ws(): void {
    WS.lastIndex = this.i;
    WS.test(this.s);
    this.i = WS.lastIndex;
  }

  document(): Node {
    if (this.s.charCodeAt(0) === 0xfeff) this.fail('unexpected BOM', 0);
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.i !== this.s.length) this.fail('extra data after the value');
    return v;
  }

  value(depth: number): Node {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    const s = this.s;
    const c = s.charCodeAt(this.i);
    switch (c) {
      case 0x22: // "
        return { k: 'str', v: this.string() };
      case 0x7b: // {
        return this.object(depth);
      case 0x5b: // [
        return this.array(depth);
      case 0x74: // t
        return this.literal('true');
      case 0x66: // f
        return this.literal('false');
      case 0x6e: // n
        return this.literal('null');
      case 0x4e: // N (Python accepts NaN, then refuses to emit it)
        if (s.startsWith('NaN', this.i)) this.fail('NaN is not allowed');
        break;
      case 0x49: // I
        if (s.startsWith('Infinity', this.i)) this.fail('Infinity is not allowed');
        break;
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    }
    return this.fail('expecting a value');
  }

  literal(text: 'true' | 'false' | 'null'): Node {
    if (!this.s.startsWith(text, this.i)) this.fail('expecting a value');
    this.i += text.length;
    return { k: 'lit', text };
  }

  number(): Node {
    if (this.s.startsWith('-Infinity', this.i)) this.fail('-Infinity is not allowed');
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (m === null) return this.fail('expecting a value');
    const text = m[0];
    const start = this.i;
    this.i = NUMBER.lastIndex;
    if (m[1] === undefined && m[2] === undefined) return { k: 'int', text };
    const v = Number(text);
    if (!Number.isFinite(v)) this.fail(`number ${text} is out of the float range`, start);
    return { k: 'float', v, text };
  }

  string(): string {
    const s = this.s;
    let i = this.i + 1;
    let out = '';
    for (;;) {
      PLAIN_RUN.lastIndex = i;
      PLAIN_RUN.test(s);
      const runEnd = PLAIN_RUN.lastIndex;
      if (runEnd > i) out += s.slice(i, runEnd);
      i = runEnd;
      if (i >= s.length) this.fail('unterminated string', this.i);
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        this.i = i + 1;
        return out;
      }
      if (c < 0x20) this.fail('invalid control character in a string', i);
      // backslash
      const e = s.charCodeAt(i + 1);
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          const hex = s.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape', i);
          out += String.fromCharCode(Number.parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          this.fail('invalid escape', i);
      }
      i += 2;
    }
  }

  array(depth: number): Node {
    this.i++;
    const items: Node[] = [];
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return { k: 'arr', items };
    }
    for (;;) {
      this.ws();
      items.push(this.value(depth + 1));
      this.ws();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i++;
        continue;
      }
      if (c === 0x5d) {
        this.i++;
        return { k: 'arr', items };
      }
      this.fail("expecting ',' or ']'");
    }
  }

  object(depth: number): Node {
    this.i++;
    const entries = new Map<string, Node>();
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return { k: 'obj', entries };
    }
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x22)
        this.fail('expecting a property name in double quotes');
      const key = this.string();
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x3a) this.fail("expecting ':'");
      this.i++;
      this.ws();
      entries.set(key, this.value(depth + 1));
      this.ws();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i++;
        continue;
      }
      if (c === 0x7d) {
        this.i++;
        return { k: 'obj', entries };
      }
      this.fail("expecting ',' or '}'");
    }
  }
}

function parse(text: string): Node {
  if (typeof text !== 'string') throw new TypeError('JSON payload text must be a string');
  return new Parser(text).document();
}

// ---------------------------------------------------------------------------------------------
// emitters

/** Python `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
export function pythonFloatRepr(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError('Out of range float values are not JSON compliant');
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expText] = x.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  const sign = neg ? '-' : '';
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1);
      return `${sign}${intPart}.${frac === '' ? '0' : frac}`;
    }
    return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = Math.abs(exp).toString().padStart(2, '0');
  return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
}

function pyInt(text: string): string {
  return text === '-0' ? '0' : text;
}

function emitPython(n: Node): string {
  switch (n.k) {
    case 'str':
      return pythonJsonString(n.v);
    case 'int':
      return pyInt(n.text);
    case 'float':
      return pythonFloatRepr(n.v);
    case 'lit':
      return n.text;
    case 'arr':
      return `[${n.items.map(emitPython).join(', ')}]`;
    case 'obj': {
      const parts: string[] = [];
      for (const [k, v] of n.entries) parts.push(`${pythonJsonString(k)}: ${emitPython(v)}`);
      return `{${parts.join(', ')}}`;
    }
  }
}

function emitCompact(n: Node): string {
  switch (n.k) {
    case 'str':
      return JSON.stringify(n.v);
    case 'int':
    case 'float':
      return n.text;
    case 'lit':
      return n.text;
    case 'arr':
      return `[${n.items.map(emitCompact).join(',')}]`;
    case 'obj': {
      const parts: string[] = [];
      for (const [k, v] of n.entries) parts.push(`${JSON.stringify(k)}:${emitCompact(v)}`);
      return `{${parts.join(',')}}`;
    }
  }
}

/**
 * `json.dumps(json.loads(text), allow_nan=False)` as the Hat event server computes it. Throws
 * {@link JsonTextError} for texts the server refuses (syntax errors, BOM, NaN/Infinity, overflow).
 */
export function pythonJsonDumps(text: string): string {
  return emitPython(parse(text));
}

/** Throws {@link JsonTextError} unless the Hat event server would accept `text` as a payload. */
export function checkJsonText(text: string): void {
  parse(text);
}

/** The value of `text` as compact standard JSON, numbers kept verbatim, duplicate keys merged. */
export function compactJson(text: string): string {
  return emitCompact(parse(text));
}
