/**
 * Puts models into a target backend for `import` and `migrate`, idempotently: a model already in
 * the target with the same type and SHA-256 is left alone, so a re-run after an interruption goes
 * on where the first run stopped. Nothing is ever overwritten: a target that holds other bytes
 * under the id (or used the id before) is a conflict, reported and skipped.
 *
 * - `keep` (default): the model keeps its id (`createModelAt`);
 * - `remap`: the target allocates a new id; a model with the same type and bytes anywhere in the
 *   target counts as already there (so remapping is idempotent too).
 */
import { type Backend, BackendError, type ModelMeta } from '../backend/types.js';

export type IdMode = 'keep' | 'remap';

export type Placement =
  | { outcome: 'created'; targetId: number }
  | { outcome: 'present'; targetId: number }
  | { outcome: 'conflict'; message: string };

export class ModelPlacer {
  private constructor(
    private readonly target: Backend,
    private readonly mode: IdMode,
    private readonly byId: Map<number, ModelMeta>,
    private readonly byContent: Map<string, number>,
  ) {}

  /** Reads the target's listing once (metadata only). */
  static async create(target: Backend, mode: IdMode): Promise<ModelPlacer> {
    if (mode === 'keep' && target.createModelAt === undefined) {
      throw new BackendError(
        'invalid',
        'the target backend cannot store a model at a chosen id; use --remap to let it allocate ids',
      );
    }
    const metas = await target.getModels();
    const byId = new Map(metas.map((m) => [m.instanceId, m]));
    const byContent = new Map<string, number>();
    for (const m of metas) byContent.set(contentKey(m.modelType, m.sha256), m.instanceId);
    return new ModelPlacer(target, mode, byId, byContent);
  }

  async place(
    sourceId: number,
    modelType: string,
    instance: Uint8Array,
    sha256: string,
  ): Promise<Placement> {
    if (this.mode === 'remap') {
      const existing = this.byContent.get(contentKey(modelType, sha256));
      if (existing !== undefined) return { outcome: 'present', targetId: existing };
      const { meta } = await this.target.createModel(modelType, instance);
      this.remember(meta);
      return { outcome: 'created', targetId: meta.instanceId };
    }
    const there = this.byId.get(sourceId);
    if (there !== undefined) {
      if (there.sha256 === sha256 && there.modelType === modelType) {
        return { outcome: 'present', targetId: sourceId };
      }
      return {
        outcome: 'conflict',
        message: `the target holds other bytes under id ${sourceId} (revision ${there.revision}, type ${there.modelType}, sha256 ${there.sha256.slice(0, 12)}…); nothing written for it (--remap imports it under a new id)`,
      };
    }
    try {
      const createAt = this.target.createModelAt as NonNullable<Backend['createModelAt']>;
      const { meta } = await createAt.call(this.target, sourceId, modelType, instance);
      this.remember(meta);
      return { outcome: 'created', targetId: meta.instanceId };
    } catch (err) {
      if (err instanceof BackendError && err.code === 'revision_conflict') {
        return {
          outcome: 'conflict',
          message: `${err.message}; nothing written for id ${sourceId} (--remap imports it under a new id)`,
        };
      }
      throw err;
    }
  }

  private remember(meta: ModelMeta): void {
    this.byId.set(meta.instanceId, meta);
    this.byContent.set(contentKey(meta.modelType, meta.sha256), meta.instanceId);
  }
}

function contentKey(modelType: string, sha256: string): string {
  return `${sha256}\u0000${modelType}`;
}
