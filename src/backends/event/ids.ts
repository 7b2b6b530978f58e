/**
 * Instance id allocation: the next id is the smallest id greater than every id ever known (models,
 * tombstones, malformed events with a valid id, ids handed out and still in flight, the snapshot's
 * high-water mark) that lies in this writer's residue class `id % stride == offset % stride`.
 * With stride 1 that is max(known)+1; with N writers on one prefix, each with its own offset, no
 * two writers can ever pick the same id. Ids are never reused, also not after a restart.
 */
import { BackendError } from '../../backend/types.js';

export class IdAllocator {
  private max = 0;

  constructor(
    private readonly stride = 1,
    private readonly offset = 0,
  ) {
    if (!Number.isSafeInteger(stride) || stride < 1) throw new RangeError('stride must be >= 1');
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= stride)
      throw new RangeError('offset must be in [0, stride)');
  }

  /** Records an id as used. */
  observe(id: number): void {
    if (id > this.max) this.max = id;
  }

  /** The highest id known. */
  get highWater(): number {
    return this.max;
  }

  /** Allocates (and records) the next id. */
  next(): number {
    const base = this.max + 1;
    const rem = base % this.stride;
    const id = base + ((this.offset - rem + this.stride) % this.stride);
    if (!Number.isSafeInteger(id))
      // Another writer used the top of the id space (an event at id 2^53-1 is valid): a clear
      // refusal for the client, not an internal error.
      throw new BackendError(
        'unavailable',
        `no instance id left: ids above ${this.max}, the highest id known under the prefix, are not safe integers (ids are never reused)`,
      );
    this.max = id;
    return id;
  }
}
