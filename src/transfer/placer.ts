/**
 * Puts models into a target backend for `import` and `migrate`, idempotently: a model already in
 * the target with the same type and SHA-256 is left alone, so a re-run after an interruption goes
 * on where the first run stopped. Nothing is ever overwritten: a target that holds other bytes
 * under the id (or used the id before) is a conflict, reported and skipped.
 *
 * - `keep` (default): the model keeps its id (`createModelAt`). What the target holds under an id
 *   is looked up a page at a time ({@link TargetLookup}), so memory does not grow with the number
 *   of models when the target lists in pages (`listModels`);
 * - `remap`: the target allocates a new id; a model with the same type and bytes anywhere in the
 *   target counts as already there (so remapping is idempotent too). That needs an index of the
 *   whole target by content, read once: its memory grows with the target's models.
 */
import { DEFAULT_LIST_LIMIT, listModelPages } from '../backend/list-pages.js';
import { type Backend, BackendError, type ModelMeta } from '../backend/types.js';

export type IdMode = 'keep' | 'remap';

export type Placement =
  | { outcome: 'created'; targetId: number }
  | { outcome: 'present'; targetId: number }
  | { outcome: 'conflict'; message: string };

/**
 * What the target holds under an id, read a page of ids at a time: a lookup outside the page read
 * last reads the next one from that id on (one query per page when ids come ascending, as `import`
 * and `migrate` place them). Without `listModels`, from one `getModels()` listing.
 */
export class TargetLookup {
  private from = 1;
  private to = 0;
  private metas = new Map<number, ModelMeta>();
  private all: Map<number, ModelMeta> | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly target: Backend,
    private readonly pageSize = DEFAULT_LIST_LIMIT,
  ) {}

  /** The target's metadata for `id`, or undefined when it holds no live model there. */
  get(id: number): Promise<ModelMeta | undefined> {
    // One read at a time: concurrent lookups of one page wait for it instead of reading it again.
    const result = this.chain.then(() => this.read(id));
    this.chain = result.catch(() => {});
    return result;
  }

  private async read(id: number): Promise<ModelMeta | undefined> {
    const list = this.target.listModels?.bind(this.target);
    if (list === undefined) {
      this.all ??= new Map((await this.target.getModels()).map((m) => [m.instanceId, m]));
      return this.all.get(id);
    }
    if (id < this.from || id > this.to) {
      const page = await list({ after: id - 1, limit: this.pageSize });
      this.metas = new Map(page.map((m) => [m.instanceId, m]));
      this.from = id;
      // An empty page: nothing at or above `id`.
      this.to = page.at(-1)?.instanceId ?? Number.POSITIVE_INFINITY;
    }
    return this.metas.get(id);
  }
}

export class ModelPlacer {
  private constructor(
    private readonly target: Backend,
    private readonly mode: IdMode,
    private readonly byId: TargetLookup,
    private readonly byContent: Map<string, number>,
  ) {}

  /** Checks the mode against the target; for `remap`, reads the target's listing (metadata). */
  static async create(target: Backend, mode: IdMode): Promise<ModelPlacer> {
    if (mode === 'keep' && target.createModelAt === undefined) {
      throw new BackendError(
        'invalid',
        'the target backend cannot store a model at a chosen id; use --remap to let it allocate ids',
      );
    }
    const byContent = new Map<string, number>();
    if (mode === 'remap') {
      for await (const page of listModelPages(target))
        for (const m of page) byContent.set(contentKey(m.modelType, m.sha256), m.instanceId);
    }
    return new ModelPlacer(target, mode, new TargetLookup(target), byContent);
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
      this.byContent.set(contentKey(meta.modelType, meta.sha256), meta.instanceId);
      return { outcome: 'created', targetId: meta.instanceId };
    }
    const there = await this.byId.get(sourceId);
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
      // Not in the target when its page was read: a model created there since (by anyone,
      // including an earlier placement of the same id) makes this a `revision_conflict`.
      const createAt = this.target.createModelAt as NonNullable<Backend['createModelAt']>;
      const { meta } = await createAt.call(this.target, sourceId, modelType, instance);
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
}

function contentKey(modelType: string, sha256: string): string {
  return `${sha256}\u0000${modelType}`;
}
