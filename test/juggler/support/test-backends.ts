/**
 * Backends for control tests: one whose writes can be marked as another writer's (origin
 * `remote`, as the event backend reports AIMM's own events), and one whose reads are held until
 * released (to fill the pending-request cap).
 */
import { map, type Observable } from 'rxjs';
import type {
  Backend,
  BackendStatus,
  DeleteResult,
  Model,
  ModelChange,
  ModelMeta,
  WriteOptions,
  WriteResult,
} from '../../../src/backend/types.js';
import { MemoryBackend } from '../../support/memory-backend.js';

class Delegating implements Backend {
  readonly inner = new MemoryBackend();
  get changes$(): Observable<ModelChange> {
    return this.inner.changes$;
  }
  getModels(): Promise<ModelMeta[]> {
    return this.inner.getModels();
  }
  getModel(id: number): Promise<Model | null> {
    return this.inner.getModel(id);
  }
  createModel(t: string, i: Uint8Array): Promise<WriteResult> {
    return this.inner.createModel(t, i);
  }
  updateModel(id: number, t: string, i: Uint8Array, o?: WriteOptions): Promise<WriteResult> {
    return this.inner.updateModel(id, t, i, o);
  }
  deleteModel(id: number, o?: WriteOptions): Promise<DeleteResult> {
    return this.inner.deleteModel(id, o);
  }
  status(): BackendStatus {
    return this.inner.status();
  }
  whenReady(): Promise<void> {
    return this.inner.whenReady();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** `remote(() => backend.createModel(...))` makes that write look like another writer's. */
export class RemoteCapableBackend extends Delegating {
  private remoteNow = false;
  private readonly mapped = this.inner.changes$.pipe(
    map((c) => (this.remoteNow ? { ...c, origin: 'remote' as const } : c)),
  );
  override get changes$(): Observable<ModelChange> {
    return this.mapped;
  }
  /** Runs a write whose change is reported with origin `remote` (the memory backend emits synchronously). */
  remote<T>(write: () => Promise<T>): Promise<T> {
    this.remoteNow = true;
    try {
      return write();
    } finally {
      this.remoteNow = false;
    }
  }
}

/** getModels() waits until `release()`. */
export class HeldBackend extends Delegating {
  private waiting: (() => void)[] = [];
  held = 0;
  /** Calls running now, and the most ever running at once. */
  active = 0;
  maxActive = 0;
  override async getModels(): Promise<ModelMeta[]> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.holding) {
        this.held++;
        await new Promise<void>((resolve) => this.waiting.push(resolve));
      }
      return await this.inner.getModels();
    } finally {
      this.active--;
    }
  }
  holding = false;
  release(): void {
    this.holding = false;
    for (const w of this.waiting.splice(0)) w();
  }
}

/** getModel() waits until `release()` while `holding`. */
export class SlowReadBackend extends Delegating {
  holding = false;
  private waiting: (() => void)[] = [];
  override async getModel(id: number): Promise<Model | null> {
    if (this.holding) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return this.inner.getModel(id);
  }
  release(): void {
    this.holding = false;
    for (const w of this.waiting.splice(0)) w();
  }
}
