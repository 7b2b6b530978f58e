/**
 * Reads that ask Hat rather than the state: a model's history and a past revision's bytes (Hat's
 * time series, `model-history.ts`), and `sync()` — the barrier after which every event Hat holds
 * under the prefix is applied (`sync.ts`). Each refuses with `unavailable` when Hat cannot answer
 * now, or when the local revision numbers are not exact yet.
 */
import type { Logger } from 'pino';
import {
  BackendError,
  type HistoryOptions,
  type Model,
  type ModelRevision,
} from '../../backend/types.js';
import type { EventBackendConfig } from './config.js';
import { HistoryCursors } from './history-cursors.js';
import type { IdAllocator } from './ids.js';
import {
  currentOnly,
  cursorOf,
  type HistoryCursor,
  type HistoryWindow,
  listRead,
  modelOf,
  readModelHistory,
  readModelPage,
} from './model-history.js';
import type { PendingWrites } from './pending-writes.js';
import type { PhaseState } from './phase.js';
import type { RevisionCompletion } from './revision-completion.js';
import type { HatSession } from './session.js';
import type { ModelState } from './state.js';
import type { ModelEntry } from './store.js';
import { syncBarrier } from './sync.js';

export interface HatReadsDeps {
  config: EventBackendConfig;
  logger: Logger;
  subscription: string[][];
  phase: PhaseState;
  session: Pick<HatSession, 'current'>;
  state: ModelState;
  ids: IdAllocator;
  pending: PendingWrites;
  completion: RevisionCompletion;
}

export class HatReads {
  private readonly config: EventBackendConfig;
  private readonly logger: Logger;
  private readonly subscription: string[][];
  private readonly phase: PhaseState;
  private readonly session: Pick<HatSession, 'current'>;
  private readonly state: ModelState;
  private readonly ids: IdAllocator;
  private readonly pending: PendingWrites;
  private readonly completion: RevisionCompletion;
  /** Where the next page of a recently listed model's history starts (`history-cursors.ts`). */
  readonly cursors = new HistoryCursors();

  constructor(d: HatReadsDeps) {
    this.config = d.config;
    this.logger = d.logger;
    this.subscription = d.subscription;
    this.phase = d.phase;
    this.session = d.session;
    this.state = d.state;
    this.ids = d.ids;
    this.pending = d.pending;
    this.completion = d.completion;
  }

  /**
   * A model's revisions from Hat's time series (`model-history.ts`): one page forward from a
   * cursor when the previous page left one at `after`, else newest first down to `after`.
   */
  async history(instanceId: number, options: HistoryOptions = {}): Promise<ModelRevision[] | null> {
    const entry = this.historyEntry(instanceId);
    if (entry === null) return null;
    const after = Math.max(0, Math.floor(options.after ?? 0));
    const limit = Math.max(1, Math.floor(options.limit ?? 1000));
    if (after >= entry.revision) return [];
    const cursor = after >= 1 ? this.cursors.get(entry, after) : undefined;
    if (cursor !== undefined) {
      const page = await this.readPage(entry, cursor, limit);
      if (page !== null) {
        const listed = listRead(entry, page.revisions, page.typeBefore);
        const last = page.revisions.at(-1);
        const lastListed = listed.at(-1);
        if (last !== undefined && lastListed !== undefined)
          this.cursors.add(entry, [cursorOf(last, lastListed.modelType)]);
        return listed;
      }
      this.cursors.forget(instanceId);
    }
    const read = await this.readHistory(entry, { after, limit });
    if (!read.complete) return [currentOnly(entry)].filter((r) => r.revision > after);
    this.cursors.add(entry, read.cursors);
    return listRead(entry, read.revisions, read.typeBefore);
  }

  /** One revision's bytes: the current one (`current`: from the state), earlier ones from Hat. */
  async revision(
    instanceId: number,
    revision: number,
    current: () => Promise<Model | null>,
  ): Promise<Model | null> {
    const entry = this.historyEntry(instanceId);
    if (entry === null || !Number.isSafeInteger(revision) || revision < 1) return null;
    if (revision === entry.revision) return entry.deleted ? null : current();
    if (revision > entry.revision) return null;
    const cursor = this.cursors.get(entry, revision - 1);
    if (cursor !== undefined) {
      const page = await this.readPage(entry, cursor, 1);
      const r = page?.revisions[0];
      if (r !== undefined && r.revision === revision) return modelOf(instanceId, r);
      this.cursors.forget(instanceId);
    }
    const read = await this.readHistory(entry, { after: revision - 1, limit: 1 });
    const r = read.revisions.find((x) => x.revision === revision);
    return r === undefined ? null : modelOf(instanceId, r);
  }

  private historyEntry(instanceId: number): ModelEntry | null {
    if (!Number.isSafeInteger(instanceId) || instanceId < 1) return null;
    if (this.pending.hasDurable(instanceId) || this.completion.pending) {
      throw new BackendError(
        'unavailable',
        this.completion.pending
          ? 'revision numbers are still being completed from Hat (full_replay: latest_then_history); try again shortly'
          : `writes to model ${instanceId} are queued for Hat; its history is known once they are sent`,
      );
    }
    return this.state.get(instanceId) ?? null;
  }

  private client() {
    const conn = this.session.current;
    if (conn === null || this.phase.closed) {
      throw new BackendError(
        'unavailable',
        `cannot read history from Hat now (${this.phase.detail()})`,
      );
    }
    return conn.main;
  }

  private readPage(entry: ModelEntry, cursor: HistoryCursor, limit: number) {
    return readModelPage(
      this.client(),
      this.config.modelPrefix,
      entry,
      this.config.requestTimeoutMs,
      cursor,
      limit,
    );
  }

  private readHistory(entry: ModelEntry, window: HistoryWindow) {
    return readModelHistory(
      this.client(),
      this.config.modelPrefix,
      entry,
      this.config.requestTimeoutMs,
      window,
    );
  }

  /** Every event Hat holds under the prefix is applied here when this resolves (`sync.ts`). */
  async sync(): Promise<void> {
    const conn = this.session.current;
    if (
      conn === null ||
      this.phase.current === 'connecting' ||
      this.phase.current === 'recovering' ||
      this.phase.closed
    )
      throw new BackendError('unavailable', `cannot sync with Hat now (${this.phase.detail()})`);
    const { events } = await syncBarrier({
      client: conn.main,
      prefix: this.config.modelPrefix,
      subscription: this.subscription,
      timeoutMs: this.config.requestTimeoutMs,
      isApplied: (ref, id) => this.state.isApplied(ref, id),
      observeId: (id) => this.ids.observe(id),
    });
    this.logger.debug({ events }, 'event backend: in sync with Hat');
  }
}
