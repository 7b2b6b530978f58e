/**
 * The connection lifecycle: what happens on each Hat connection the {@link HatSession} makes —
 * recovery (`recovery.ts`) with notifications held in the intake, then online or standby by the
 * server's status (with several Hat addresses, a server that stays non-operational is left for
 * another), the queued writes sent on going online, the background revision completion; and on
 * losing it — the waiting writes failed, the persisted acks failed, offline. It moves the phase
 * (`phase.ts`) and readiness follows.
 */
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import { BackendError } from '../../backend/types.js';
import type { Event, Status } from '../../hat/eventer/common.js';
import type { ChangeFeed } from './change-feed.js';
import type { EventBackendConfig } from './config.js';
import { refKey } from './event-ref.js';
import type { EventIntake } from './intake.js';
import type { EventMetrics } from './metrics.js';
import type { PersistedAcks } from './persisted-acks.js';
import type { PhaseState } from './phase.js';
import { recover } from './recovery.js';
import type { RevisionCompletion } from './revision-completion.js';
import type { Connection, HatSession, SessionHandlers } from './session.js';
import type { SnapshotStore } from './snapshot.js';
import type { ModelState } from './state.js';
import type { WritePath } from './write-path.js';

export interface LifecycleDeps {
  config: EventBackendConfig;
  logger: Logger;
  metrics: EventMetrics;
  subscription: string[][];
  /** How many Hat addresses the connector may choose from. */
  hatAddresses: number;
  phase: PhaseState;
  session: Pick<HatSession, 'current' | 'dropConnection'>;
  intake: EventIntake;
  state: ModelState;
  snapshot: SnapshotStore | null;
  completion: RevisionCompletion;
  persistedAcks: PersistedAcks;
  feed: ChangeFeed;
  writes: Pick<WritePath, 'sendQueued' | 'failWaiting'>;
}

export class ConnectionLifecycle implements SessionHandlers {
  private readonly config: EventBackendConfig;
  private readonly logger: Logger;
  private readonly metrics: EventMetrics;
  private readonly subscription: string[][];
  private readonly hatAddresses: number;
  private readonly phase: PhaseState;
  private readonly session: Pick<HatSession, 'current' | 'dropConnection'>;
  private readonly intake: EventIntake;
  private readonly state: ModelState;
  private readonly snapshot: SnapshotStore | null;
  private readonly completion: RevisionCompletion;
  private readonly persistedAcks: PersistedAcks;
  private readonly feed: ChangeFeed;
  private readonly writes: Pick<WritePath, 'sendQueued' | 'failWaiting'>;
  private connSubs: Subscription[] = [];
  private standbyTimer: NodeJS.Timeout | null = null;

  constructor(d: LifecycleDeps) {
    this.config = d.config;
    this.logger = d.logger;
    this.metrics = d.metrics;
    this.subscription = d.subscription;
    this.hatAddresses = d.hatAddresses;
    this.phase = d.phase;
    this.session = d.session;
    this.intake = d.intake;
    this.state = d.state;
    this.snapshot = d.snapshot;
    this.completion = d.completion;
    this.persistedAcks = d.persistedAcks;
    this.feed = d.feed;
    this.writes = d.writes;
  }

  /** The backend closes: no standby switch any more. */
  stop(): void {
    this.clearStandbySwitch();
  }

  async onConnected(conn: Connection): Promise<void> {
    if (this.phase.closed) throw new Error('closed');
    this.phase.current = 'recovering';
    this.phase.recoveryProgress = 0;
    this.phase.resyncRequested = false;
    this.phase.serverStatus = conn.main.status;
    this.intake.hold();
    this.connSubs.push(
      conn.main.events$.subscribe({
        next: (events) => this.onNotify(events),
        error: () => {},
      }),
      conn.main.status$.subscribe({
        next: (s) => this.onServerStatus(s),
        error: () => {},
      }),
    );
    if (conn.persisted !== null) this.persistedAcks.attach(conn.persisted);
    this.metrics.connected.set(1);
    this.metrics.connects.inc();
    let released = false;
    try {
      const report = await recover({
        client: conn.main,
        checkpoint: this.state.checkpoint,
        subscription: this.subscription,
        pageSize: this.config.catchUpPageSize,
        pageBytes: this.config.catchUpPageBytes,
        timeoutMs: this.config.requestTimeoutMs,
        history: this.config.fullReplay !== 'latest',
        latestFirst: this.config.fullReplay === 'latest_then_history',
        provisional: () => this.snapshot?.markRevisionsProvisional(),
        catchUp: this.config.catchUp,
        logger: this.logger,
        apply: (events, scannedUpTo) => {
          this.feed.apply(events, () => 'remote', scannedUpTo);
        },
        rebuild: () => this.rebuild(),
        prefix: this.config.modelPrefix,
        appliedEvent: (id) => this.state.get(id)?.event,
        progress: (n) => {
          this.phase.recoveryProgress = n;
          this.metrics.recoveryEvents.set(n);
        },
        received: (query, n) => this.metrics.recoveryReceived.inc({ query }, n),
      });
      if (report.bases !== undefined)
        this.completion.begin(report.bases, (id) => this.state.get(id)?.event);
      this.feed.announceRemovedAfterRebuild();
      this.intake.release();
      released = true;
      this.snapshot?.markSynced();
      this.metrics.recoveries.inc({ mode: report.rebuilt ? 'rebuild' : report.mode });
      this.logger.info(
        {
          mode: report.mode,
          via: report.via,
          rebuilt: report.rebuilt,
          events: report.events,
          received: report.received,
          pages: report.pages,
          models: this.state.size,
          checkpoint: this.state.checkpoint === null ? null : refKey(this.state.checkpoint),
        },
        'event backend: recovered from Hat',
      );
    } finally {
      if (!released) this.intake.release();
    }
    if (this.phase.closed) return;
    this.phase.lastError = '';
    if (this.phase.serverStatus === 'operational') this.goOnline();
    else {
      this.phase.current = 'standby';
      this.armStandbySwitch();
    }
    this.completeRevisions(conn);
  }

  private onServerStatus(s: Status): void {
    this.phase.serverStatus = s;
    if (this.phase.closed || this.phase.current === 'recovering') return;
    if (s === 'operational' && this.phase.current === 'standby') this.goOnline();
    else if (s !== 'operational' && this.phase.current === 'online') {
      this.phase.current = 'standby';
      this.logger.warn({ status: s }, 'event backend: Hat server is not operational');
      this.armStandbySwitch();
    }
    this.phase.markReadyIfReady();
  }

  /**
   * With several Hat addresses, a connection whose server stays non-operational for
   * `standby_switch_ms` is dropped, so that the next connect can find an operational server (in a
   * redundant Hat the active server may now be another address). With one address the backend
   * waits for the server's status to change.
   */
  private armStandbySwitch(): void {
    this.clearStandbySwitch();
    if (this.hatAddresses < 2) return;
    this.standbyTimer = setTimeout(() => {
      this.standbyTimer = null;
      if (this.phase.current !== 'standby') return;
      this.logger.warn(
        { status: this.phase.serverStatus, afterMs: this.config.standbySwitchMs },
        'event backend: Hat server still not operational; reconnecting to find an operational one',
      );
      void this.session.dropConnection();
    }, this.config.standbySwitchMs);
    this.standbyTimer.unref();
  }

  private clearStandbySwitch(): void {
    if (this.standbyTimer === null) return;
    clearTimeout(this.standbyTimer);
    this.standbyTimer = null;
  }

  private goOnline(): void {
    this.clearStandbySwitch();
    this.phase.current = 'online';
    // Writes queued while Hat was unreachable go first, in their order.
    this.writes.sendQueued();
    this.phase.markReadyIfReady();
  }

  onDisconnected(reason: Error | null): void {
    this.clearStandbySwitch();
    this.completion.abort();
    for (const s of this.connSubs) s.unsubscribe();
    this.connSubs = [];
    this.persistedAcks.detach();
    this.persistedAcks.failAll(
      new Error('the Hat connection closed before the event was reported persisted'),
    );
    this.metrics.connected.set(0);
    if (this.phase.closed) return;
    this.metrics.disconnects.inc();
    this.phase.lastError = reason?.message ?? 'connection closed';
    this.logger.warn({ reason: this.phase.lastError }, 'event backend: lost the Hat connection');
    this.phase.current = 'offline';
    this.writes.failWaiting(
      new BackendError('unavailable', `Hat event server unreachable: ${this.phase.lastError}`),
    );
    this.phase.markReadyIfReady();
  }

  onAttemptFailed(err: Error, attempt: number, delayMs: number): void {
    if (this.phase.closed) return;
    this.phase.lastError = err.message;
    this.metrics.disconnects.inc();
    this.logger.warn(
      { err: err.message, attempt, retryInMs: delayMs },
      'event backend: cannot connect to Hat, retrying',
    );
    this.phase.current = 'offline';
    this.phase.markReadyIfReady();
  }

  private onNotify(events: Event[]): void {
    try {
      this.intake.push(events);
    } catch (err) {
      this.logger.error({ err }, 'event backend: cannot apply events; reconnecting to catch up');
      void this.session.dropConnection();
    }
  }

  /** Forgets the state before a rebuild from Hat; models that are gone are announced after it. */
  private rebuild(): void {
    this.feed.rememberBeforeRebuild();
    this.completion.drop();
    this.state.reset();
  }

  // ---- exact revisions after a latest_then_history replay ------------------------------------

  /** Reads the history in the background on `conn` and makes the provisional revisions exact. */
  private completeRevisions(conn: Connection): void {
    if (!this.completion.pending) return;
    this.completion
      .run({
        deps: {
          client: conn.main,
          subscription: this.subscription,
          pageSize: this.config.catchUpPageSize,
          pageBytes: this.config.catchUpPageBytes,
          timeoutMs: this.config.requestTimeoutMs,
          catchUp: this.config.catchUp,
          logger: this.logger,
          received: (query, n) => this.metrics.recoveryReceived.inc({ query }, n),
        },
        complete: (counts, bases) => this.state.completeRevisions(counts, bases),
        exact: (ids) => this.feed.announceExact(ids),
      })
      .catch(() => {
        // Logged; tried again on this connection after a pause, or after the next reconnect.
        const t = setTimeout(() => {
          if (this.session.current === conn && !this.phase.closed) this.completeRevisions(conn);
        }, this.config.reconnectMaxDelayMs);
        t.unref();
      });
  }
}
