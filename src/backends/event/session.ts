/**
 * The backend's connection to Hat: connect (the main connection subscribed to the prefix, plus a
 * persisted=true one for `ack: persisted`), hand it to `onConnected` (recovery), wait until it
 * closes, and reconnect with capped, jittered exponential backoff — until stopped. A connection
 * closed by our own side is reopened at once.
 */
import type { HatConnector } from '../../backend/types.js';
import { backoffDelay } from '../../common/backoff.js';
import type { EventerClient } from '../../hat/eventer/common.js';

export interface Connection {
  main: EventerClient;
  persisted: EventerClient | null;
}

export interface SessionOptions {
  subscriptions: string[][];
  withPersisted: boolean;
  minDelayMs: number;
  maxDelayMs: number;
  random?: () => number;
}

export interface SessionHandlers {
  /** Recovery on a fresh connection; throwing closes it and retries after a backoff. */
  onConnected(conn: Connection): Promise<void>;
  /** The connection (that had been handed to onConnected) is gone. */
  onDisconnected(reason: Error | null): void;
  /** A connection attempt (or its recovery) failed; the next one follows after `delayMs`. */
  onAttemptFailed(err: Error, attempt: number, delayMs: number): void;
}

export class HatSession {
  private stopped = false;
  private conn: Connection | null = null;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly hat: HatConnector,
    private readonly options: SessionOptions,
    private readonly handlers: SessionHandlers,
  ) {}

  get current(): Connection | null {
    return this.conn;
  }

  start(): void {
    if (this.loop === null) this.loop = this.run();
  }

  /** Closes the current connection; the loop reconnects (after a short backoff). */
  async dropConnection(): Promise<void> {
    if (this.conn !== null) await closeAll(this.conn);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.dropConnection();
    await this.loop;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      let conn: Connection | null = null;
      let handedOver = false;
      try {
        conn = await this.open();
        if (this.stopped) {
          await closeAll(conn);
          break;
        }
        this.conn = conn;
        handedOver = true;
        await this.handlers.onConnected(conn);
        attempt = 0;
        const reason = await Promise.race([
          conn.main.closed,
          conn.persisted?.closed ?? new Promise<never>(() => {}),
        ]);
        this.conn = null;
        await closeAll(conn);
        this.handlers.onDisconnected(reason);
        if (this.stopped) break;
        // Closed by our side (reason null: the connector moving to another server, or the backend
        // dropping the connection to resync or to leave a standby server): reconnect at once.
        // Closed by the server or the network: wait a backoff first.
        if (reason !== null)
          await this.sleep(
            backoffDelay(0, this.options.minDelayMs, this.options.maxDelayMs, this.options.random),
          );
      } catch (err) {
        this.conn = null;
        if (conn !== null) await closeAll(conn);
        if (handedOver) this.handlers.onDisconnected(err as Error);
        if (this.stopped) break;
        const delay = backoffDelay(
          attempt,
          this.options.minDelayMs,
          this.options.maxDelayMs,
          this.options.random,
        );
        this.handlers.onAttemptFailed(err as Error, attempt + 1, delay);
        attempt++;
        await this.sleep(delay);
      }
    }
    if (this.conn !== null) {
      const c = this.conn;
      this.conn = null;
      await closeAll(c);
      this.handlers.onDisconnected(null);
    }
  }

  private async open(): Promise<Connection> {
    const main = await this.hat.connect({ subscriptions: this.options.subscriptions });
    if (!this.options.withPersisted) return { main, persisted: null };
    try {
      const persisted = await this.hat.connect({
        subscriptions: this.options.subscriptions,
        persisted: true,
        nameSuffix: 'persisted',
      });
      return { main, persisted };
    } catch (err) {
      await main.close().catch(() => {});
      throw err;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}

async function closeAll(c: Connection): Promise<void> {
  await Promise.allSettled([c.main.close(), c.persisted?.close()]);
}
