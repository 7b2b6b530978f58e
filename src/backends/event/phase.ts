/**
 * Where the backend is in its connection's life — its phase, the Hat server's status, the last
 * connection error, recovery progress — and, from that, readiness: `whenReady()` resolves the first
 * time the backend is online, or offline/standby with writes it may queue (a synchronised snapshot
 * and `queue_when_disconnected`). The connection lifecycle and the write path move the phase; the
 * rest only read it.
 */
import type { Status } from '../../hat/eventer/common.js';
import type { SnapshotStore } from './snapshot.js';
import { type CompletionView, statusDetail } from './status-detail.js';

export type Phase = 'connecting' | 'recovering' | 'standby' | 'online' | 'offline' | 'closed';

export class PhaseState {
  current: Phase = 'connecting';
  serverStatus: Status | null = null;
  lastError = '';
  recoveryProgress = 0;
  /** A reconnect was requested because Hat's event ids went backwards (once per connection). */
  resyncRequested = false;
  private readyResolve!: () => void;
  private readyReject!: (err: Error) => void;
  private readonly readyPromise: Promise<void>;
  private isReady = false;

  constructor(
    private readonly queueWhenDisconnected: boolean,
    private readonly snapshot: SnapshotStore | null,
    private readonly completion: CompletionView,
  ) {
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.readyPromise.catch(() => {});
  }

  get closed(): boolean {
    return this.current === 'closed';
  }

  whenReady(): Promise<void> {
    return this.readyPromise;
  }

  /** The backend closes before it was ready (no effect once ready). */
  rejectReady(err: Error): void {
    this.readyReject(err);
  }

  /** Ready now: online, or able to queue writes while Hat is away. */
  ready(): boolean {
    if (this.current === 'online') return true;
    return (
      (this.current === 'offline' || this.current === 'standby') &&
      this.queueWhenDisconnected &&
      this.snapshot?.isSynced() === true
    );
  }

  markReadyIfReady(): void {
    if (this.isReady || !this.ready()) return;
    this.isReady = true;
    this.readyResolve();
  }

  /** The status detail text for the phase (`status-detail.ts`). */
  detail(): string {
    return statusDetail(this, this.completion);
  }
}
