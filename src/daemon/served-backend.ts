/**
 * The backend as the controls see it. Controls start while the backend recovers (so that /readyz
 * can answer "not ready"); this wrapper makes every call made before recovery wait for it, refuses
 * calls once the daemon is stopping (`closed`, also for calls still waiting), lets the daemon wait
 * for calls in flight to settle (the drain), and counts operations for /metrics by op and result.
 */
import type { Observable } from 'rxjs';
import {
  type Backend,
  BackendError,
  type BackendStatus,
  type DeleteResult,
  type Model,
  type ModelChange,
  type ModelMeta,
  type WriteOptions,
  type WriteResult,
} from '../backend/types.js';
import type { MetricsRegistry } from '../common/metrics.js';

export type Operation = 'list' | 'get' | 'create' | 'update' | 'delete';

export class ServedBackend implements Backend {
  readonly changes$: Observable<ModelChange>;
  private readonly ready: Promise<void>;
  private rejectWaiters: ((err: Error) => void) | null = null;
  private stopping = false;
  private inFlight = 0;
  private drained: (() => void) | null = null;
  private readonly operations;
  private readonly inFlightGauge;

  constructor(
    private readonly inner: Backend,
    metrics: MetricsRegistry,
  ) {
    this.changes$ = inner.changes$;
    this.operations = metrics.counter(
      'operations_total',
      'Backend operations requested by clients, by operation and result (ok or error code)',
    );
    this.inFlightGauge = metrics.gauge('operations_in_flight', 'Backend operations in progress');
    this.inFlightGauge.collect(() => this.inFlight);
    // Waiters are released by recovery, or rejected when it fails or the daemon stops first.
    this.ready = new Promise<void>((resolve, reject) => {
      this.rejectWaiters = reject;
      inner.whenReady().then(resolve, reject);
    });
    this.ready.catch(() => {});
  }

  getModels(): Promise<ModelMeta[]> {
    return this.run('list', () => this.inner.getModels());
  }

  getModel(instanceId: number): Promise<Model | null> {
    return this.run('get', () => this.inner.getModel(instanceId));
  }

  createModel(modelType: string, instance: Uint8Array): Promise<WriteResult> {
    return this.run('create', () => this.inner.createModel(modelType, instance));
  }

  updateModel(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options?: WriteOptions,
  ): Promise<WriteResult> {
    return this.run('update', () =>
      this.inner.updateModel(instanceId, modelType, instance, options),
    );
  }

  deleteModel(instanceId: number, options?: WriteOptions): Promise<DeleteResult> {
    return this.run('delete', () => this.inner.deleteModel(instanceId, options));
  }

  status(): BackendStatus {
    return this.inner.status();
  }

  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Controls do not own the backend: closing through them only stops accepting calls. */
  async close(): Promise<void> {
    this.stopAccepting();
  }

  /** Refuses new calls with `closed`; calls waiting for recovery fail the same way. */
  stopAccepting(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.rejectWaiters?.(new BackendError('closed', 'aimm-store is stopping'));
  }

  /** Resolves once no call is in flight (call after {@link stopAccepting}). */
  drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.drained;
      this.drained = () => {
        previous?.();
        resolve();
      };
    });
  }

  get operationsInFlight(): number {
    return this.inFlight;
  }

  private async run<T>(op: Operation, call: () => Promise<T>): Promise<T> {
    if (this.stopping) {
      this.operations.inc({ op, result: 'closed' });
      throw new BackendError('closed', 'aimm-store is stopping');
    }
    this.inFlight++;
    try {
      await this.ready;
      const result = await call();
      this.operations.inc({ op, result: 'ok' });
      return result;
    } catch (err) {
      this.operations.inc({ op, result: err instanceof BackendError ? err.code : 'internal' });
      throw err;
    } finally {
      this.inFlight--;
      if (this.inFlight === 0 && this.drained !== null) {
        const done = this.drained;
        this.drained = null;
        done();
      }
    }
  }
}
