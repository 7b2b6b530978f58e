/** The `sha256` of {@link ModelMeta}: lowercase hex SHA-256 of the instance bytes. */
import * as crypto from 'node:crypto';

/** `crypto.hash` (one-shot, Node ≥ 20.12) is about twice as fast as createHash on small inputs. */
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array) => string }).hash;

export function sha256Hex(bytes: Uint8Array): string {
  if (oneShot !== undefined) return oneShot('sha256', bytes);
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The instance's hash: the caller's (`CreateOptions.sha256`) when it gave a well-formed one. */
export function sha256Of(bytes: Uint8Array, given: string | undefined): string {
  return given !== undefined && HEX64.test(given) ? given : sha256Hex(bytes);
}
