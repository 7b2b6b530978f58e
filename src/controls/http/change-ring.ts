/**
 * The HTTP change stream's memory of recent changes: a per-process sequence number for every
 * backend change and a bounded ring of the last `capacity` of them, so that a client that lost its
 * connection can resume where it was (`Last-Event-ID`). The backends keep no global change log, so
 * positions only mean something within one daemon process: an event id is `<boot>-<seq>`, `boot`
 * a random token of this ring (one per process and control), `seq` counting from 1.
 */
import { randomBytes } from 'node:crypto';
import type { ModelChange } from '../../backend/types.js';

export interface RingEntry {
  readonly seq: number;
  readonly change: ModelChange;
  /** The change's JSON text (`changeData`), made once, when a stream first sends it. */
  readonly data: string;
}

/** An entry whose text is made on first use: with no stream open, none is ever made. */
class LazyEntry implements RingEntry {
  private text: string | undefined;
  constructor(
    readonly seq: number,
    readonly change: ModelChange,
    private readonly toData: (c: ModelChange) => string,
  ) {}
  get data(): string {
    this.text ??= this.toData(this.change);
    return this.text;
  }
}

/** Where a resuming client goes: after `seq` (replay from the ring), or back to a full listing. */
export type ResumePoint = { kind: 'resume'; seq: number } | { kind: 'reset'; reason: ResetReason };

/**
 * - `unknown_boot`: the id is from another daemon process (a restart) or another control;
 * - `too_old`: the changes after it have left the ring;
 * - `invalid`: not an id this server hands out (malformed, or ahead of the newest change).
 */
export type ResetReason = 'unknown_boot' | 'too_old' | 'invalid';

const ID_PATTERN = /^([0-9a-f]{16})-(0|[1-9][0-9]{0,15})$/;

export class ChangeRing {
  readonly boot: string;
  private readonly entries: (RingEntry | undefined)[];
  private last = 0;

  constructor(
    readonly capacity: number,
    private readonly toData: (c: ModelChange) => string,
    boot: string = randomBytes(8).toString('hex'),
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    }
    this.boot = boot;
    this.entries = new Array<RingEntry | undefined>(capacity);
  }

  /** The sequence number of the newest change (0 before the first). */
  get seq(): number {
    return this.last;
  }

  /** The oldest sequence number still held (`seq + 1` when empty). */
  get oldest(): number {
    return Math.max(1, this.last - this.capacity + 1);
  }

  push(change: ModelChange): RingEntry {
    const entry = new LazyEntry(++this.last, change, this.toData);
    this.entries[entry.seq % this.capacity] = entry;
    return entry;
  }

  /** The entry with sequence number `seq`, or undefined when it is not (or no longer) held. */
  get(seq: number): RingEntry | undefined {
    if (seq < this.oldest || seq > this.last) return undefined;
    return this.entries[seq % this.capacity];
  }

  /** The event id of position `seq`. */
  id(seq: number): string {
    return `${this.boot}-${seq}`;
  }

  /**
   * Where a client that last saw event id `lastId` resumes: after that position when every change
   * since is still in the ring (none missed, none repeated), else a reset.
   */
  resumePoint(lastId: string): ResumePoint {
    const m = ID_PATTERN.exec(lastId);
    if (m === null) return { kind: 'reset', reason: 'invalid' };
    if (m[1] !== this.boot) return { kind: 'reset', reason: 'unknown_boot' };
    const seq = Number(m[2]);
    if (seq > this.last) return { kind: 'reset', reason: 'invalid' };
    if (seq < this.oldest - 1) return { kind: 'reset', reason: 'too_old' };
    return { kind: 'resume', seq };
  }
}
