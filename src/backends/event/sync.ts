/**
 * The sync barrier (`Backend.sync`): before a standby of a redundant group starts writing, every
 * event Hat holds under the prefix must be applied here, or a new id could collide with one the
 * old active wrote and a compare-and-set could pass against a stale revision.
 *
 * It asks Hat for the latest event of every type under the prefix (one `latest` query: one event
 * per model id, tombstones included) and waits until each of them is applied through the normal
 * path (notifications, or recovery after a reconnect), which keeps revisions exact: nothing is
 * applied out of order here. The highest id seen is recorded at once, so ids continue past it
 * even before the waiting ends.
 */
import { BackendError } from '../../backend/types.js';
import type { Event, EventerClient } from '../../hat/eventer/common.js';
import { type EventRef, refOf } from './event-ref.js';
import { parseInstanceId } from './format.js';
import { withTimeout } from './timeout.js';

export interface SyncOptions {
  client: EventerClient;
  prefix: readonly string[];
  subscription: string[][];
  timeoutMs: number;
  isApplied(ref: EventRef, instanceId: number | null): boolean;
  observeId(id: number): void;
  /** How often to check while waiting (default 10 ms). */
  pollMs?: number;
}

export async function syncBarrier(options: SyncOptions): Promise<{ events: number }> {
  const deadline = Date.now() + options.timeoutMs;
  const result = await withTimeout(
    options.client.query({ kind: 'latest', eventTypes: options.subscription }),
    options.timeoutMs,
    'sync query',
  );
  const pending: { ref: EventRef; id: number | null }[] = [];
  for (const e of result.events as Event[]) {
    const parsed = parseInstanceId(options.prefix, e.type);
    const id = 'id' in parsed ? parsed.id : null;
    if (id !== null) options.observeId(id);
    pending.push({ ref: refOf(e), id });
  }
  const pollMs = options.pollMs ?? 10;
  for (;;) {
    const left = pending.filter((p) => !options.isApplied(p.ref, p.id));
    if (left.length === 0) return { events: pending.length };
    if (Date.now() >= deadline)
      throw new BackendError(
        'unavailable',
        `not caught up with Hat: ${left.length} of the prefix's latest events not applied within ${options.timeoutMs} ms`,
      );
    await new Promise((r) => setTimeout(r, pollMs));
    pending.splice(0, pending.length, ...left);
  }
}
