/**
 * An in-memory backend: a third-party backend module living under test/ (loaded by specifier like
 * any other), and a light Backend for control/daemon tests that do not need a file or Hat.
 * Config: `{module, fail_create?: string}` — with `fail_create` set, `create` throws that message.
 */
import { createHash } from 'node:crypto';
import { Subject } from 'rxjs';
import {
  type Backend,
  type BackendConf,
  type BackendContext,
  BackendError,
  type CreateOptions,
  type DeleteResult,
  type Model,
  type ModelChange,
  type ModelMeta,
  type WriteOptions,
  type WriteResult,
} from '../../src/backend/types.js';

export class MemoryBackend implements Backend {
  private readonly models = new Map<number, Model>();
  private readonly revisions = new Map<number, number>();
  private nextId = 1;
  private closed = false;
  private readonly subject = new Subject<ModelChange>();
  readonly changes$ = this.subject.asObservable();

  async getModels(): Promise<ModelMeta[]> {
    return [...this.models.values()].sort((a, b) => a.instanceId - b.instanceId).map(metaOf);
  }

  async getModel(instanceId: number): Promise<Model | null> {
    const m = this.models.get(instanceId);
    return m === undefined ? null : { ...m, instance: Uint8Array.prototype.slice.call(m.instance) };
  }

  /** Always copies (it may ignore `handOver`). */
  async createModel(
    modelType: string,
    instance: Uint8Array,
    _options?: CreateOptions,
  ): Promise<WriteResult> {
    this.checkOpen();
    const id = this.nextId++;
    return this.write(id, modelType, instance, 'created');
  }

  async createModelAt(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
  ): Promise<WriteResult> {
    this.checkOpen();
    if (!Number.isSafeInteger(instanceId) || instanceId < 1)
      throw new BackendError(
        'invalid',
        `instance id must be a positive integer, got ${instanceId}`,
      );
    const used = this.revisions.get(instanceId);
    if (used !== undefined) {
      throw new BackendError(
        'revision_conflict',
        this.models.has(instanceId)
          ? `model ${instanceId} exists (revision ${used})`
          : `model ${instanceId} was deleted (revision ${used}); ids are never reused`,
      );
    }
    if (instanceId >= this.nextId) this.nextId = instanceId + 1;
    return this.write(instanceId, modelType, instance, 'created');
  }

  async updateModel(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options: WriteOptions = {},
  ): Promise<WriteResult> {
    this.checkOpen();
    const cur = this.models.get(instanceId);
    if (cur === undefined) throw new BackendError('not_found', `model ${instanceId} not found`);
    checkRevision(instanceId, cur.revision, options);
    return this.write(instanceId, modelType, instance, 'updated');
  }

  async deleteModel(instanceId: number, options: WriteOptions = {}): Promise<DeleteResult> {
    this.checkOpen();
    const cur = this.models.get(instanceId);
    if (cur === undefined) throw new BackendError('not_found', `model ${instanceId} not found`);
    checkRevision(instanceId, cur.revision, options);
    const revision = cur.revision + 1;
    this.models.delete(instanceId);
    this.revisions.set(instanceId, revision);
    this.subject.next({
      change: 'deleted',
      instanceId,
      modelType: cur.modelType,
      revision,
      origin: 'local',
    });
    return { instanceId, modelType: cur.modelType, revision, ack: 'committed' };
  }

  status() {
    return { ready: !this.closed };
  }

  async whenReady(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subject.complete();
  }

  private write(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    change: 'created' | 'updated',
  ): WriteResult {
    const revision = (this.revisions.get(instanceId) ?? 0) + 1;
    const model: Model = {
      instanceId,
      modelType,
      revision,
      size: instance.length,
      sha256: createHash('sha256').update(instance).digest('hex'),
      updated: new Date().toISOString(),
      instance: Uint8Array.prototype.slice.call(instance), // a copy, also of a Buffer
    };
    this.models.set(instanceId, model);
    this.revisions.set(instanceId, revision);
    const meta = metaOf(model);
    this.subject.next({ change, instanceId, modelType, revision, origin: 'local', meta });
    return { meta, ack: 'committed' };
  }

  private checkOpen(): void {
    if (this.closed) throw new BackendError('closed', 'backend is closed');
  }
}

function checkRevision(id: number, current: number, options: WriteOptions): void {
  if (options.expectedRevision !== undefined && options.expectedRevision !== current) {
    throw new BackendError(
      'revision_conflict',
      `model ${id} is at revision ${current}, expected ${options.expectedRevision}`,
    );
  }
}

function metaOf(m: Model): ModelMeta {
  return {
    instanceId: m.instanceId,
    modelType: m.modelType,
    revision: m.revision,
    size: m.size,
    sha256: m.sha256,
    updated: m.updated,
  };
}

export function create(conf: BackendConf, _context: BackendContext): Backend {
  if (typeof conf.fail_create === 'string') throw new Error(conf.fail_create);
  return new MemoryBackend();
}
