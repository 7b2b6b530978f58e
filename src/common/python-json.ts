/**
 * Strings as Python's `json.dumps` writes them with its defaults (ensure_ascii): the text Hat's
 * event server re-emits in JSON payloads and AIMM's Juggler server puts on the wire.
 */

const ASCII_SAFE = /^[ !#-[\]-~]*$/;

/**
 * A string as Python's `json.dumps` writes it (ensure_ascii): only printable ASCII stays literal;
 * `"`, `\` and the short escapes are backslashed, the rest is lowercase `\uXXXX` per UTF-16 unit.
 */
export function pythonJsonString(v: string): string {
  if (ASCII_SAFE.test(v)) return `"${v}"`;
  let out = '"';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += '\\\\';
      else out += v[i];
      continue;
    }
    switch (c) {
      case 0x08:
        out += '\\b';
        break;
      case 0x0c:
        out += '\\f';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x09:
        out += '\\t';
        break;
      default:
        out += `\\u${c.toString(16).padStart(4, '0')}`;
    }
  }
  return `${out}"`;
}
