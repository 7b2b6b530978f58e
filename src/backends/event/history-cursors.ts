/**
 * Where the next page of a model's history starts in Hat's time series: revision → event, for a
 * few recently listed models, so that a listing walked forward (`after` = the last revision of the
 * previous page, as the CLI, the Juggler `get_history` and HTTP `?after=` page) reads one page of
 * events per page instead of the whole series again (`model-history.ts`).
 *
 * A revision's number is counted back from the state's current revision and event; the cursors of
 * a model are valid exactly as long as those two are unchanged (the anchor). Any change of the
 * model (a write, a remote event, a rebuild that renumbers) drops them on the next lookup.
 */
import { type EventRef, refKey } from './event-ref.js';
import type { HistoryCursor } from './model-history.js';
import type { ModelEntry } from './store.js';

/** Models whose cursors are kept (least recently used dropped first). */
const MAX_MODELS = 256;
/** Cursors kept per model. */
const MAX_PER_MODEL = 64;

interface ModelCursors {
  anchor: string;
  byRevision: Map<number, HistoryCursor>;
}

function anchorOf(entry: Pick<ModelEntry, 'revision' | 'event'>): string {
  const ref: EventRef = entry.event;
  return `${entry.revision}@${refKey(ref)}:${ref.s}.${ref.us}`;
}

export class HistoryCursors {
  private readonly models = new Map<number, ModelCursors>();

  /** The cursor at `revision` of this model, if one is known for its current state. */
  get(entry: ModelEntry, revision: number): HistoryCursor | undefined {
    const m = this.models.get(entry.instanceId);
    if (m === undefined) return undefined;
    if (m.anchor !== anchorOf(entry)) {
      this.models.delete(entry.instanceId);
      return undefined;
    }
    // Most recently used last.
    this.models.delete(entry.instanceId);
    this.models.set(entry.instanceId, m);
    return m.byRevision.get(revision);
  }

  /** Remembers cursors read for the model's current state (below its current revision). */
  add(entry: ModelEntry, cursors: readonly HistoryCursor[]): void {
    const useful = cursors.filter((c) => c.revision >= 1 && c.revision < entry.revision);
    if (useful.length === 0) return;
    const anchor = anchorOf(entry);
    let m = this.models.get(entry.instanceId);
    if (m === undefined || m.anchor !== anchor) m = { anchor, byRevision: new Map() };
    this.models.delete(entry.instanceId);
    this.models.set(entry.instanceId, m);
    for (const c of useful) {
      m.byRevision.delete(c.revision);
      m.byRevision.set(c.revision, c);
    }
    // Oldest insertions first out.
    for (const r of m.byRevision.keys()) {
      if (m.byRevision.size <= MAX_PER_MODEL) break;
      m.byRevision.delete(r);
    }
    for (const id of this.models.keys()) {
      if (this.models.size <= MAX_MODELS) break;
      this.models.delete(id);
    }
  }

  /** Drops the model's cursors (a forward read could not vouch for its numbers). */
  forget(instanceId: number): void {
    this.models.delete(instanceId);
  }

  /** Models with cursors (for tests). */
  get size(): number {
    return this.models.size;
  }
}
