/**
 * One `GET /changes` client: what it has been sent and what it gets next, written as Server-Sent
 * Events at the pace its connection takes them. Nothing is queued per client: the stream keeps a
 * cursor into the shared {@link ChangeRing} and pulls from it while `res.write` accepts data; when
 * the socket is full it waits for `drain`. A client that falls out of the ring (`lagging`) or does
 * not drain for `stallMs` (`stalled`) is dropped: it can resume, or gets a reset.
 *
 * The events (see docs/http-changes.md):
 * - `model` (no id): one per current model, the listing of a new or reset client;
 * - `change` (no id before `synced` of a listing; with `<boot>-<seq>` otherwise): one per change;
 * - `synced` (id): the client holds the whole state as of that id; live changes follow;
 * - `reset` (no id): the resume point is unknown; a fresh listing follows.
 */
import type { ServerResponse } from 'node:http';
import type { ModelChange, ModelMeta } from '../../backend/types.js';
import { modelJson } from '../model-json.js';
import type { ChangeRing, ResetReason } from './change-ring.js';

export type DropReason = 'lagging' | 'stalled';

export interface StreamOptions {
  /** Only models of this type (`?type=`), or null. */
  type: string | null;
  /** Drop the client when the socket stays full this long. */
  stallMs: number;
  /** The stream was dropped (the response is destroyed). */
  onDrop(reason: DropReason): void;
}

type Phase = 'loading' | 'listing' | 'live';

export class ChangeStream {
  private phase: Phase = 'live';
  /** The ring position handled last (sent or filtered out). */
  private cursor = 0;
  /** `synced` is sent once the cursor reaches it (null: sent). */
  private syncAt: number | null = null;
  /** Changes after this position carry their id (before it: part of a listing). */
  private idsAfter = 0;
  private listing: ModelMeta[] = [];
  private listed = 0;
  private replayed = 0;
  /** Listed revisions: a change the listing already holds is not sent again. */
  private readonly covered = new Map<number, { revision: number; provisional: boolean }>();
  /** Ids the client holds through this stream (for `?type=` and the listing's deletes). */
  private readonly known = new Set<number>();
  private stallTimer: NodeJS.Timeout | null = null;
  private done = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly ring: ChangeRing,
    private readonly options: StreamOptions,
  ) {
    res.on('drain', () => {
      if (this.stallTimer !== null) clearTimeout(this.stallTimer);
      this.stallTimer = null;
      this.pump();
    });
    res.on('close', () => this.finish());
  }

  get blocked(): boolean {
    return this.stallTimer !== null;
  }

  get closed(): boolean {
    return this.done;
  }

  /** A reset tells the client its resume point is gone; the listing follows. */
  reset(reason: ResetReason): void {
    this.write(event('reset', JSON.stringify({ reason })));
  }

  /** Starts a listing: changes after the ring's current position are held until it arrives. */
  beginListing(): void {
    this.phase = 'loading';
    this.cursor = this.ring.seq;
  }

  /** The listing arrived (`getModels()` after {@link beginListing}). */
  listingLoaded(models: ModelMeta[]): void {
    if (this.done) return;
    const type = this.options.type;
    this.listing = type === null ? models : models.filter((m) => m.modelType === type);
    for (const m of this.listing) {
      this.covered.set(m.instanceId, {
        revision: m.revision,
        provisional: m.revisionProvisional === true,
      });
      this.known.add(m.instanceId);
    }
    this.phase = 'listing';
    this.syncAt = this.ring.seq;
    this.idsAfter = this.ring.seq;
    this.pump();
  }

  /** Resumes after ring position `seq`: the changes since, then `synced`, then live. */
  resume(seq: number): void {
    this.cursor = seq;
    this.idsAfter = seq;
    this.syncAt = this.ring.seq;
    this.pump();
  }

  /** A change was added to the ring. */
  changed(): void {
    if (this.done) return;
    if (this.cursor < this.ring.oldest - 1) this.drop('lagging');
    else if (!this.blocked) this.pump();
  }

  heartbeat(): void {
    if (!this.done && !this.blocked) this.write(': keepalive\n\n');
  }

  /** Ends the stream with a last comment (daemon shutdown); a blocked one is cut. */
  end(comment: string): void {
    if (this.done) return;
    if (this.blocked) this.res.destroy();
    else this.res.end(`: ${comment}\n\n`);
    this.finish();
  }

  /** Writes while the socket takes it. */
  private pump(): void {
    while (!this.done && !this.blocked) {
      if (this.phase === 'loading') return;
      if (this.phase === 'listing' && this.listed < this.listing.length) {
        const meta = this.listing[this.listed++] as ModelMeta;
        this.write(event('model', JSON.stringify(modelJson(meta))));
        continue;
      }
      if (this.syncAt !== null && this.cursor >= this.syncAt) {
        const data =
          this.phase === 'listing' ? { models: this.listed } : { replayed: this.replayed };
        this.write(event('synced', JSON.stringify(data), this.ring.id(this.syncAt)));
        this.syncAt = null;
        this.phase = 'live';
        continue;
      }
      if (this.cursor >= this.ring.seq) return;
      const entry = this.ring.get(this.cursor + 1);
      if (entry === undefined) {
        this.drop('lagging');
        return;
      }
      this.cursor = entry.seq;
      if (!this.wanted(entry.change)) continue;
      if (this.syncAt !== null && this.phase === 'live') this.replayed++;
      const id = entry.seq > this.idsAfter ? this.ring.id(entry.seq) : undefined;
      this.write(event('change', entry.data, id));
    }
  }

  /** Is this change news for the client (its type, and not already in its listing)? */
  private wanted(c: ModelChange): boolean {
    const id = c.instanceId;
    const listed = this.covered.get(id);
    if (listed !== undefined) {
      // At the listed revision, only the exact one replacing a provisional one is news.
      const exactNow = listed.provisional && c.revisionProvisional !== true;
      if (c.revision < listed.revision || (c.revision === listed.revision && !exactNow))
        return false;
      this.covered.delete(id);
    }
    const held = this.known.has(id);
    // Deleted before the listing was read: the client never saw the model.
    if (c.change === 'deleted' && !held && this.phase === 'listing') return false;
    const type = this.options.type;
    if (type !== null && c.modelType !== type && !held) return false;
    // A model that changes to another type is sent once more (the client sees it leave).
    if (c.change === 'deleted' || (type !== null && c.modelType !== type)) this.known.delete(id);
    else this.known.add(id);
    return true;
  }

  private write(text: string): void {
    if (this.done) return;
    if (this.res.write(text)) return;
    this.stallTimer = setTimeout(() => this.drop('stalled'), this.options.stallMs);
    this.stallTimer.unref();
  }

  private drop(reason: DropReason): void {
    if (this.done) return;
    this.res.destroy();
    this.finish();
    this.options.onDrop(reason);
  }

  private finish(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.done = true;
  }
}

/** One SSE event: `data` is one line of JSON (JSON text never contains a raw newline). */
export function event(name: string, data: string, id?: string): string {
  return id === undefined
    ? `event: ${name}\ndata: ${data}\n\n`
    : `id: ${id}\nevent: ${name}\ndata: ${data}\n\n`;
}
