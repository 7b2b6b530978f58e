/**
 * Preload for benchmark daemons (`node --expose-gc --import bench/gc-on-signal.js …`): a full
 * garbage collection on SIGUSR2, so a bench can measure what one request holds apart from the
 * garbage earlier requests left for V8's next collection. Not part of the product.
 */
const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc === 'function') {
  process.on('SIGUSR2', () => {
    gc();
    gc();
  });
}
