/**
 * The base64 of model instances (`instance_b64` in requests, `instance` in replies and state).
 */

/** Standard padded base64 of `bytes` (without copying them). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Strict standard base64 (RFC 4648 §4, padded, no whitespace or line breaks): what AIMM's client
 * sends in `instance_b64`. Node's decoder is lenient (it skips junk and accepts missing padding),
 * so a text is accepted only when it is exactly the canonical encoding of what it decodes to.
 */
export function decodeStrictBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !BASE64.test(text)) return null;
  // Canonical: the bits past the last byte (2 with one `=`, 4 with two) are zero.
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  if (pad > 0) {
    const last = SEXTET.indexOf(text.charAt(text.length - pad - 1));
    if ((last & (pad === 2 ? 0x0f : 0x03)) !== 0) return null;
  }
  return Buffer.from(text, 'base64');
}

/** The standard alphabet, then at most two `=` at the end (the length is checked apart). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const SEXTET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
