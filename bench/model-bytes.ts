/** Deterministic model bytes for the benches: `size` bytes, different for every `seed`. */
export function blob(size: number, seed: number): Uint8Array {
  const b = Buffer.alloc(size);
  for (let j = 0; j + 4 <= size; j += 4)
    b.writeUInt32LE((Math.imul(j + 1, 2654435761) ^ seed) >>> 0, j);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
