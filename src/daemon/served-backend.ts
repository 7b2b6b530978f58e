/**
 * The backend as the controls see it. Controls start while the backend recovers (so that /readyz
 * can answer "not ready"); this wrapper makes every call made before recovery wait for it, refuses
 * calls once the daemon is stopping (`closed`, also for calls still waiting), lets the daemon wait
 * for calls in flight to settle (the drain), and counts operations for /metrics by op and result.
 * In a redundant group a write gate (the daemon's role) refuses writes while this daemon is not the
 * active one, and {@link ServedBackend.drainWrites} lets the role change wait for writes in flight.
 */
import type { Observable } from 'rxjs';
import { NoHistoryError } from '../backend/no-history.js';
import {
  type Backend,
  BackendError,
  type BackendStatus,
  type ByteSpan,
  type CreateOptions,
  type DeleteResult,
  type HistoryOptions,
  type ListOptions,
  type Model,
  type ModelChange,
  type ModelMeta,
  type ModelRange,
  type ModelRevision,
  type WriteOptions,
  type WriteResult,
} from '../backend/types.js';
import { type CounterSeries, type MetricsRegistry, seriesBy } from '../common/metrics.js';

export type Operation = 'list' | 'get' | 'history' | 'revision' | 'create' | 'update' | 'delete';

const WRITES: ReadonlySet<Operation> = new Set(['create', 'update', 'delete']);

/** Says why writes are refused now (null: allowed). */
export type WriteGate = () => BackendError | null;

export class ServedBackend implements Backend {
  readonly changes$: Observable<ModelChange>;
  /** Present when the backend has it; counted as `create` and gated like every write. */
  readonly createModelAt?: (
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options?: CreateOptions,
  ) => Promise<WriteResult>;
  /** Present when the backend has it; counted as `get`. */
  readonly getModelRange?: (
    instanceId: number,
    pick: (meta: ModelMeta) => ByteSpan | null,
  ) => Promise<ModelRange | null>;
  /** Present when the backend has it; counted as `list`. */
  readonly listModels?: (options?: ListOptions) => Promise<ModelMeta[]>;
  private readonly ready: Promise<void>;
  /** Recovery is done: a call need not wait a turn for `ready`. */
  private isReady = false;
  private rejectWaiters: ((err: Error) => void) | null = null;
  private stopping = false;
  private inFlight = 0;
  private drained: (() => void) | null = null;
  private writesInFlight = 0;
  private writesDrained: (() => void)[] = [];
  private writeGate: WriteGate = () => null;
  private readonly operations;
  private readonly okCount: (op: Operation) => CounterSeries;
  private readonly inFlightGauge;

  constructor(
    private readonly inner: Backend,
    metrics: MetricsRegistry,
  ) {
    this.changes$ = inner.changes$;
    const list = inner.listModels?.bind(inner);
    if (list !== undefined) this.listModels = (options) => this.run('list', () => list(options));
    const createAt = inner.createModelAt?.bind(inner);
    if (createAt !== undefined) {
      this.createModelAt = (instanceId, modelType, instance, options) =>
        this.run('create', () => createAt(instanceId, modelType, instance, options));
    }
    const range = inner.getModelRange?.bind(inner);
    if (range !== undefined) {
      this.getModelRange = (instanceId, pick) => this.run('get', () => range(instanceId, pick));
    }
    this.operations = metrics.counter(
      'operations_total',
      'Backend operations requested by clients, by operation and result (ok or error code)',
    );
    this.okCount = seriesBy(this.operations, (op) => ({ op, result: 'ok' }));
    this.inFlightGauge = metrics.gauge('operations_in_flight', 'Backend operations in progress');
    this.inFlightGauge.collect(() => this.inFlight);
    // Waiters are released by recovery, or rejected when it fails or the daemon stops first.
    this.ready = new Promise<void>((resolve, reject) => {
      this.rejectWaiters = reject;
      inner.whenReady().then(() => {
        this.isReady = true;
        resolve();
      }, reject);
    });
    this.ready.catch(() => {});
  }

  getModels(): Promise<ModelMeta[]> {
    return this.run('list', () => this.inner.getModels());
  }

  getModel(instanceId: number): Promise<Model | null> {
    return this.run('get', () => this.inner.getModel(instanceId));
  }

  getHistory(instanceId: number, options?: HistoryOptions): Promise<ModelRevision[] | null> {
    return this.run('history', () => {
      if (this.inner.getHistory === undefined) throw noHistory();
      return this.inner.getHistory(instanceId, options);
    });
  }

  getRevision(instanceId: number, revision: number): Promise<Model | null> {
    return this.run('revision', () => {
      if (this.inner.getRevision === undefined) throw noHistory();
      return this.inner.getRevision(instanceId, revision);
    });
  }

  createModel(
    modelType: string,
    instance: Uint8Array,
    options?: CreateOptions,
  ): Promise<WriteResult> {
    return this.run('create', () => this.inner.createModel(modelType, instance, options));
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

  /** The backend's own limit, when it tells. */
  get maxInstanceBytes(): number | undefined {
    return this.inner.maxInstanceBytes;
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

  /** Installs the check every write passes before it reaches the backend. */
  setWriteGate(gate: WriteGate): void {
    this.writeGate = gate;
  }

  /** Resolves once no write that passed the gate is in flight. */
  drainWrites(): Promise<void> {
    if (this.writesInFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.writesDrained.push(resolve));
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
    const write = WRITES.has(op);
    let passed = false;
    try {
      if (!this.isReady) await this.ready;
      if (write) {
        // Checked after recovery and right before the call: nothing awaits between the check and
        // the count, so a role change that drains writes sees every write it let through.
        const refusal = this.writeGate();
        if (refusal !== null) throw refusal;
        passed = true;
        this.writesInFlight++;
      }
      const result = await call();
      this.okCount(op).inc();
      return result;
    } catch (err) {
      this.operations.inc({ op, result: err instanceof BackendError ? err.code : 'internal' });
      throw err;
    } finally {
      if (passed) {
        this.writesInFlight--;
        if (this.writesInFlight === 0) for (const done of this.writesDrained.splice(0)) done();
      }
      this.inFlight--;
      if (this.inFlight === 0 && this.drained !== null) {
        const done = this.drained;
        this.drained = null;
        done();
      }
    }
  }
}

function noHistory(): BackendError {
  return new NoHistoryError();
}
