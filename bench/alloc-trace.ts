/**
 * Preload for benchmark daemons (`node --import bench/alloc-trace.js …`, see bench/one-write.ts):
 * appends every allocation of 1 MiB or more made through `Buffer` (alloc, from, concat) or by
 * `Buffer#toString`, with its callers, to the file named by `AIMM_ALLOC_TRACE`; SIGUSR1 writes a
 * `----` line. Not part of the product.
 */
import { appendFileSync } from 'node:fs';

const file = process.env.AIMM_ALLOC_TRACE;
const MIN = 1024 * 1024;

function log(what: string, bytes: number): void {
  if (file === undefined || bytes < MIN) return;
  const stack = (new Error().stack ?? '')
    .split('\n')
    .slice(3, 8)
    .map((l) => l.trim());
  appendFileSync(file, `${(bytes / MIN).toFixed(1)} MiB ${what}: ${stack.join(' < ')}\n`);
}

if (file !== undefined) {
  const B = Buffer as unknown as Record<string, (...a: unknown[]) => Buffer>;
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow', 'from', 'concat']) {
    const original = B[name] as (...a: unknown[]) => Buffer;
    B[name] = function (this: unknown, ...a: unknown[]): Buffer {
      const out = original.apply(this, a);
      // (Buffer.from of an ArrayBuffer is a view, not an allocation.)
      if (!(name === 'from' && a[0] instanceof ArrayBuffer)) log(`Buffer.${name}`, out.length);
      return out;
    };
  }
  const bufferToString = Buffer.prototype.toString;
  Buffer.prototype.toString = function (this: Buffer, ...a: unknown[]): string {
    const out = (bufferToString as (...x: unknown[]) => string).apply(this, a);
    log(`toString(${String(a[0] ?? 'utf8')})`, out.length);
    return out;
  };
  process.on('SIGUSR1', () => appendFileSync(file, '----\n'));
}
