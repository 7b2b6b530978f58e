/**
 * Counts decodes of received large JSON payload texts (`ReceivedJsonPayload#text`), to show that
 * code keeps them as bytes.
 */
import { ReceivedJsonPayload } from '../../src/hat/eventer/payload.js';

/**
 * Replaces the `text` getter with a counting one until `restore()`. With `countIf`, only reads
 * whose calling stack frame (a line of `Error#stack`) it accepts are counted.
 */
export function spyTextReads(countIf?: (caller: string) => boolean): {
  count(): number;
  restore(): void;
} {
  const desc = Object.getOwnPropertyDescriptor(ReceivedJsonPayload.prototype, 'text');
  const get = desc?.get as () => string;
  let n = 0;
  Object.defineProperty(ReceivedJsonPayload.prototype, 'text', {
    configurable: true,
    get() {
      if (countIf === undefined || countIf(new Error().stack?.split('\n')[2] ?? '')) n++;
      return get.call(this);
    },
  });
  return {
    count: () => n,
    restore: () =>
      Object.defineProperty(ReceivedJsonPayload.prototype, 'text', desc as PropertyDescriptor),
  };
}
