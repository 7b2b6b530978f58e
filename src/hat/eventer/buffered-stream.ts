/**
 * A hot stream that holds its values until the first subscriber arrives, then delivers them to it
 * and behaves like a plain multicast subject. Used for the client's `events$` and `status$`, so
 * nothing received between `connect()` and subscribing is lost.
 */
import { Observable, type Subscriber } from 'rxjs';

export class BufferedStream<T> {
  readonly observable: Observable<T>;
  private readonly subscribers = new Set<Subscriber<T>>();
  /** Held values (each with a callback to run once delivered), until the first subscription. */
  private buffer: [T, (() => void) | null][] | null = [];
  private completed = false;

  constructor(private readonly maxBuffered: number) {
    this.observable = new Observable<T>((subscriber) => this.subscribe(subscriber));
  }

  /**
   * Delivers `value` (or holds it); `delivered` runs right after it reached the subscribers.
   * Returns false when the buffer is full (the value is dropped and the caller should give up).
   */
  next(value: T, delivered: (() => void) | null = null): boolean {
    if (this.completed) return true;
    if (this.buffer !== null) {
      if (this.buffer.length >= this.maxBuffered) return false;
      this.buffer.push([value, delivered]);
      return true;
    }
    for (const s of [...this.subscribers]) s.next(value);
    delivered?.();
    return true;
  }

  complete(): void {
    if (this.completed) return;
    this.completed = true;
    for (const s of [...this.subscribers]) s.complete();
    this.subscribers.clear();
  }

  private subscribe(subscriber: Subscriber<T>): () => void {
    const held = this.buffer;
    this.buffer = null;
    this.subscribers.add(subscriber);
    if (held !== null) {
      for (const [value, delivered] of held) {
        subscriber.next(value);
        delivered?.();
      }
    }
    if (this.completed) {
      this.subscribers.delete(subscriber);
      subscriber.complete();
    }
    return () => {
      this.subscribers.delete(subscriber);
    };
  }
}
