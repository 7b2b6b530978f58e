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
  if (text.length % 4 !== 0) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}
