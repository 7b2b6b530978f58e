/**
 * A test backend module (loaded by file path like any third-party backend) whose recovery, writes
 * and close can be held back, to make the daemon's windows observable without timing assertions.
 * It wraps {@link MemoryBackend}. Config (its `confSchema` is a schema object, the third-party way):
 * - `ready_file`: recovery completes once this file exists (status 'waiting for ...' until then);
 * - `fail_recovery`: recovery fails with this message;
 * - `write_delay_ms`: every write takes this long (a window for writes in flight);
 * - `hang_close`: `close()` never resolves (a stop that cannot finish).
 * - `hat_required`: `createSubscription` returns `[['test', '*']]` (so the daemon requires `hat`);
 *   `create` then records whether it got a Hat connector in `status().detail`.
 * - `crash_after_ready`: once recovered, a bug: an uncaught `exception` or an unhandled `rejection`.
 */
import { existsSync } from 'node:fs';
import type {
  Backend,
  BackendConf,
  BackendContext,
  BackendStatus,
  DeleteResult,
  Model,
  ModelMeta,
  WriteOptions,
  WriteResult,
} from '../../src/backend/types.js';
import { MemoryBackend } from './memory-backend.js';

export const confSchema = {
  type: 'object',
  required: ['module'],
  additionalProperties: false,
  properties: {
    module: { type: 'string' },
    ready_file: { type: 'string' },
    fail_recovery: { type: 'string' },
    write_delay_ms: { type: 'integer', minimum: 0 },
    hang_close: { type: 'boolean' },
    hat_required: { type: 'boolean' },
    crash_after_ready: { enum: ['exception', 'rejection'] },
  },
};

export interface SlowBackendConf extends BackendConf {
  ready_file?: string;
  fail_recovery?: string;
  write_delay_ms?: number;
  hang_close?: boolean;
  hat_required?: boolean;
  crash_after_ready?: 'exception' | 'rejection';
}

export class SlowBackend implements Backend {
  private readonly inner = new MemoryBackend();
  readonly changes$ = this.inner.changes$;
  private recovered = false;
  private readonly ready: Promise<void>;
  private poll: NodeJS.Timeout | null = null;

  constructor(
    private readonly conf: SlowBackendConf,
    private readonly hatGiven: boolean,
  ) {
    this.ready = this.recover();
    this.ready.catch(() => {});
    const crash = conf.crash_after_ready;
    if (crash !== undefined) {
      this.ready.then(() =>
        setTimeout(() => {
          if (crash === 'exception') throw new Error('test bug: uncaught');
          void Promise.reject(new Error('test bug: unhandled'));
        }, 10),
      );
    }
  }

  private recover(): Promise<void> {
    if (this.conf.fail_recovery !== undefined) {
      return Promise.reject(new Error(this.conf.fail_recovery));
    }
    const file = this.conf.ready_file;
    if (file === undefined) {
      this.recovered = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const check = () => {
        if (!existsSync(file)) return;
        if (this.poll !== null) clearInterval(this.poll);
        this.poll = null;
        this.recovered = true;
        resolve();
      };
      this.poll = setInterval(check, 20);
      check();
    });
  }

  getModels(): Promise<ModelMeta[]> {
    return this.inner.getModels();
  }

  getModel(instanceId: number): Promise<Model | null> {
    return this.inner.getModel(instanceId);
  }

  async createModel(modelType: string, instance: Uint8Array): Promise<WriteResult> {
    await this.delay();
    return this.inner.createModel(modelType, instance);
  }

  async updateModel(
    instanceId: number,
    modelType: string,
    instance: Uint8Array,
    options?: WriteOptions,
  ): Promise<WriteResult> {
    await this.delay();
    return this.inner.updateModel(instanceId, modelType, instance, options);
  }

  async deleteModel(instanceId: number, options?: WriteOptions): Promise<DeleteResult> {
    await this.delay();
    return this.inner.deleteModel(instanceId, options);
  }

  status(): BackendStatus {
    const hat = this.conf.hat_required === true ? ` hat=${this.hatGiven}` : '';
    if (this.recovered) return { ready: true, detail: `recovered${hat}` };
    return { ready: false, detail: `waiting for ${this.conf.ready_file ?? 'nothing'}${hat}` };
  }

  whenReady(): Promise<void> {
    return this.ready;
  }

  close(): Promise<void> {
    if (this.poll !== null) clearInterval(this.poll);
    this.poll = null;
    if (this.conf.hang_close === true) return new Promise(() => {});
    return this.inner.close();
  }

  private delay(): Promise<void> {
    const ms = this.conf.write_delay_ms ?? 0;
    return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
  }
}

export function createSubscription(conf: SlowBackendConf): string[][] {
  return conf.hat_required === true ? [['test', '*']] : [];
}

export function create(conf: BackendConf, context: BackendContext): Backend {
  return new SlowBackend(conf as SlowBackendConf, context.hat !== null);
}
