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
  const pad = strictPadding(text, knownAscii);
  if (pad < 0) return null;
  const bytes = Buffer.from(text, 'base64');
  // Every character but the padding is a sextet: one skipped makes the result shorter.
  return bytes.length === (text.length / 4) * 3 - pad ? bytes : null;
}

/**
 * {@link decodeStrictBase64} of the ASCII text `bytes[start, end)`, read {@link STRICT_STEP}
 * characters at a time straight into the result: no string of the whole text is made (13.3 MB
 * for a 10 MiB model). Each piece is checked as a whole text would be; padding before the end
 * leaves the result shorter than the whole text promises, which the last check catches.
 */
export function decodeStrictBase64Ascii(
  bytes: Buffer,
  start: number,
  end: number,
  step = STRICT_STEP,
): Buffer | null {
  const n = end - start;
  if (n % 4 !== 0 || step % 4 !== 0 || step <= 0) return null;
  const pad = n === 0 || bytes[end - 1] !== EQUALS ? 0 : bytes[end - 2] === EQUALS ? 2 : 1;
  const out = Buffer.allocUnsafe((n / 4) * 3 - pad);
  let at = 0;
  for (let i = start; i < end; i += step) {
    const text = bytes.toString('latin1', i, Math.min(end, i + step));
    const piecePad = strictPadding(text, true);
    if (piecePad < 0) return null;
    const written = out.write(text, at, 'base64');
    if (written !== (text.length / 4) * 3 - piecePad) return null;
    at += written;
  }
  return at === out.length ? out : null;
}

/** Characters of base64 decoded at a time by {@link decodeStrictBase64Ascii} (a multiple of 4). */
export const STRICT_STEP = 64 * 1024;

/**
 * The padding (0 – 2) of `text` when it may be canonical base64 (what can be checked without
 * decoding it), else -1. Decoding must then give exactly `length / 4 * 3 - padding` bytes.
 */
function strictPadding(text: string, knownAscii: boolean): number {
  const n = text.length;
  if (n % 4 !== 0) return -1;
  if (text.indexOf('-') !== -1 || text.indexOf('_') !== -1) return -1;
  // Non-ASCII (a UTF-8 length other than the string's): one native pass, no JavaScript loop.
  // (`knownAscii`: the caller read the text from bytes it checked to be ASCII.)
  if (!knownAscii && Buffer.byteLength(text, 'utf8') !== n) return -1;
  const pad =
    n === 0 || text.charCodeAt(n - 1) !== EQUALS ? 0 : text.charCodeAt(n - 2) === EQUALS ? 2 : 1;
  // Canonical: the bits past the last byte (2 with one `=`, 4 with two) are zero.
  if (pad > 0) {
    // (Not a sextet: -1, whose low bits are set.)
    const last = SEXTET.indexOf(text.charAt(n - pad - 1));
    if ((last & (pad === 2 ? 0x0f : 0x03)) !== 0) return -1;
  }
  return pad;
}

const EQUALS = 0x3d;
const SEXTET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
