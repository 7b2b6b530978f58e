/**
 * The base64 of model instances (`instance_b64` in requests, `instance` in replies and state).
 */

/** Standard padded base64 of `bytes` (without copying them). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Strict standard base64 (RFC 4648 §4, padded, no whitespace or line breaks): what AIMM's client
 * sends in `instance_b64`. Node's decoder is lenient, so a text is accepted only when it is
 * exactly the canonical encoding of what it decodes to. Node's decoder also reads `-` and `_` (the
 * URL-safe alphabet) and a character above U+00FF by its low byte, and it skips any other
 * character outside the alphabet (padding included): such a text decodes to fewer bytes than its
 * length promises, which is how it is caught without a scan of its characters in JavaScript.
 */
export function decodeStrictBase64(text: string, knownAscii = false): Buffer | null {
  const n = text.length;
  if (n % 4 !== 0) return null;
  if (text.indexOf('-') !== -1 || text.indexOf('_') !== -1) return null;
  // Non-ASCII (a UTF-8 length other than the string's): one native pass, no JavaScript loop.
  // (`knownAscii`: the caller read the text from bytes it checked to be ASCII.)
  if (!knownAscii && Buffer.byteLength(text, 'utf8') !== n) return null;
  const pad =
    n === 0 || text.charCodeAt(n - 1) !== EQUALS ? 0 : text.charCodeAt(n - 2) === EQUALS ? 2 : 1;
  // Canonical: the bits past the last byte (2 with one `=`, 4 with two) are zero.
  if (pad > 0) {
    // (Not a sextet: -1, whose low bits are set.)
    const last = SEXTET.indexOf(text.charAt(n - pad - 1));
    if ((last & (pad === 2 ? 0x0f : 0x03)) !== 0) return null;
  }
  const bytes = Buffer.from(text, 'base64');
  // Every character but the padding is a sextet: one skipped makes the result shorter.
  return bytes.length === (n / 4) * 3 - pad ? bytes : null;
}

const EQUALS = 0x3d;
const SEXTET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
