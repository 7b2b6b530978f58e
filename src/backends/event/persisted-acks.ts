/**
 * Acknowledgement level `persisted`: a second eventer connection subscribed to the prefix with
 * `persisted=true` receives our events only after Hat flushed them to disk. A write waits for its
 * event id there. Ids seen before anyone waits for them (the flush can beat our own bookkeeping)
 * are remembered for a while.
 */
import type { Subscription } from 'rxjs';
import type { EventerClient } from '../../hat/eventer/common.js';
import { refKey } from './event-ref.js';

const REMEMBER = 100_000;

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class PersistedAcks {
  private readonly seen = new Set<string>();
  private readonly waiters = new Map<string, Waiter>();
  private subscription: Subscription | null = null;
  private idleWaiters: (() => void)[] = [];

  /** Follows a persisted=true connection's notifications. */
  attach(client: EventerClient): void {
    this.subscription?.unsubscribe();
    this.subscription = client.events$.subscribe((events) => {
      for (const e of events) this.persisted(refKey(e.id));
    });
  }

  detach(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
  }

  /** Resolves once the event is reported persisted; rejects after `timeoutMs` or on failAll. */
  wait(
    id: { server: number; session: number; instance: number },
    timeoutMs: number,
  ): Promise<void> {
    const key = refKey(id);
    if (this.seen.delete(key)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        this.checkIdle();
        reject(
          new Error(
            `event ${key} was registered but not reported persisted within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.waiters.set(key, { resolve, reject, timer });
    });
  }

  /** Resolves once nobody waits any more. */
  whenIdle(): Promise<void> {
    if (this.waiters.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  failAll(err: Error): void {
    for (const w of this.waiters.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.waiters.size > 0) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private persisted(key: string): void {
    const w = this.waiters.get(key);
    if (w !== undefined) {
      this.waiters.delete(key);
      clearTimeout(w.timer);
      w.resolve();
      this.checkIdle();
      return;
    }
    this.seen.add(key);
    if (this.seen.size > REMEMBER) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }
}
