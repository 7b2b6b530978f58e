/**
 * The models the page knows: first from `GET /models`, then kept current by `GET /changes` (its
 * listing replaces the state once `synced` arrives, then each change is applied). Ids are kept
 * sorted; views subscribe and re-render on the next animation frame.
 */
import type { ModelMeta } from './api.js';
import type { SseEvent } from './sse.js';

export interface Change {
  change: 'created' | 'updated' | 'deleted';
  instance_id: number;
  model_type: string;
  revision: number;
  origin: 'local' | 'remote';
  size?: number;
  sha256?: string;
  updated?: string;
  revision_provisional?: boolean;
}

export class ModelStore {
  readonly models = new Map<number, ModelMeta>();
  /** Ascending ids of `models`. */
  ids: number[] = [];
  /** The listing of the current /changes connection, until `synced`. */
  private listing: Map<number, ModelMeta> | null = null;
  private readonly listeners: ((ids: ReadonlySet<number> | null) => void)[] = [];
  private changed: Set<number> | null = new Set();
  private scheduled = false;
  synced = false;
  /** A first state arrived (GET /models or the stream's listing). */
  loaded = false;

  /** `f(null)`: everything may have changed; else the ids that did. */
  subscribe(f: (ids: ReadonlySet<number> | null) => void): () => void {
    this.listeners.push(f);
    return () => {
      const i = this.listeners.indexOf(f);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  replaceAll(models: Iterable<ModelMeta>): void {
    this.models.clear();
    for (const m of models) this.models.set(m.instance_id, m);
    this.ids = [...this.models.keys()].sort((a, b) => a - b);
    this.loaded = true;
    this.notify(null);
  }

  onEvent(e: SseEvent): void {
    if (e.event === 'reset') {
      this.listing = new Map();
      return;
    }
    if (e.event === 'model') {
      const m = JSON.parse(e.data) as ModelMeta;
      this.listing ??= new Map();
      this.listing.set(m.instance_id, { ...m, origin: this.models.get(m.instance_id)?.origin });
      return;
    }
    if (e.event === 'synced') {
      if (this.listing !== null) {
        const listing = this.listing;
        this.listing = null;
        this.replaceAll(listing.values());
      }
      this.synced = true;
      if (performance.getEntriesByName('changes-synced').length === 0)
        performance.mark('changes-synced');
      this.notify(null);
      return;
    }
    if (e.event === 'change') {
      const c = JSON.parse(e.data) as Change;
      // A change during a listing applies to the listing (the server drops what it includes).
      if (this.listing !== null) applyTo(this.listing, c);
      else this.apply(c);
    }
  }

  private apply(c: Change): void {
    const had = this.models.has(c.instance_id);
    applyTo(this.models, c);
    const has = this.models.has(c.instance_id);
    if (had && !has) this.ids.splice(lowerBound(this.ids, c.instance_id), 1);
    else if (!had && has) this.ids.splice(lowerBound(this.ids, c.instance_id), 0, c.instance_id);
    this.notify(new Set([c.instance_id]));
  }

  private notify(ids: Set<number> | null): void {
    if (ids === null || this.changed === null) this.changed = null;
    else for (const id of ids) this.changed.add(id);
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      const changed = this.changed;
      this.changed = new Set();
      for (const f of this.listeners) f(changed);
    });
  }
}

function applyTo(models: Map<number, ModelMeta>, c: Change): void {
  if (c.change === 'deleted') {
    models.delete(c.instance_id);
    return;
  }
  models.set(c.instance_id, {
    instance_id: c.instance_id,
    model_type: c.model_type,
    revision: c.revision,
    size: c.size ?? 0,
    sha256: c.sha256 ?? '',
    updated: c.updated ?? '',
    origin: c.origin,
    ...(c.revision_provisional === true ? { revision_provisional: true } : {}),
  });
}

/** The first index whose id is >= `id`. */
export function lowerBound(ids: number[], id: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as number) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
