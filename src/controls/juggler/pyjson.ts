/**
 * JSON text in the format of Python's `json.dumps` with default settings, which is what AIMM's
 * server (and hat-juggler) put on the wire: `", "` and `": "` separators, no newlines, ASCII only
 * (everything outside 0x20..0x7e escaped as lowercase `\uXXXX`, astral characters as surrogate
 * pairs). Objects keep their insertion order, so callers build them in AIMM's key order. Producing
 * the same text as AIMM keeps 0.7 segment boundaries identical to the recordings.
 */

// Anything but printable ASCII other than quote and backslash needs escaping (with ensure_ascii,
// Python escapes controls, DEL and non-ASCII).
const NEEDS_ESCAPE = /[^ !#-[\]-~]/;
const NON_ASCII = /[\u007f-\uffff]/g;

export function pyString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  // JSON.stringify escapes quote, backslash and controls exactly like Python (\b \f \n \r \t and
  // lowercase \u00xx); the rest is non-ASCII, escaped per UTF-16 unit as Python does.
  return JSON.stringify(s).replace(
    NON_ASCII,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return 'Infinity';
  if (n === Number.NEGATIVE_INFINITY) return '-Infinity';
  const s = String(n);
  // Python writes exponents with at least two digits: 1e-07, 1e+22.
  return s.replace(/e([+-])(\d)$/, 'e$10$2');
}

/** Serializes like `json.dumps(value)`; `undefined` object members are skipped (as JSON.stringify). */
export function pyDumps(value: unknown): string {
  const parts: string[] = [];
  write(value, parts);
  return parts.join('');
}

function write(value: unknown, out: string[]): void {
  if (value === null || value === undefined) {
    out.push('null');
  } else if (typeof value === 'string') {
    out.push(pyString(value));
  } else if (typeof value === 'number') {
    out.push(pyNumber(value));
  } else if (typeof value === 'boolean') {
    out.push(value ? 'true' : 'false');
  } else if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(', ');
      write(value[i], out);
    }
    out.push(']');
  } else if (typeof value === 'object') {
    out.push('{');
    let first = true;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      if (!first) out.push(', ');
      first = false;
      out.push(pyString(k), ': ');
      write(v, out);
    }
    out.push('}');
  } else {
    throw new TypeError(`cannot serialize a ${typeof value} as JSON`);
  }
}
