/**
 * Which ids a create at a chosen id (`createModelAt`: HTTP `PUT /models/{id}` of a new id, an
 * import keeping ids) may take. The event backend cannot list every id ever used under the prefix:
 * the applied state has every live model and tombstone, but ids of failed creates, of malformed
 * events and of other writers' allocations in flight are known only through the allocator's
 * high-water mark, and other writers allocate by `id_allocation`. So a chosen id must be
 * - not in the state (no model, no tombstone: ids are never reused) and without writes in flight;
 * - in this daemon's residue class `id % stride == offset` (other writers on the prefix allocate
 *   only in theirs, so none of them can pick it);
 * - above every id known here (the high-water mark), so that nothing below it that might have been
 *   used is taken.
 * Everything else fails with `revision_conflict`, saying why. The caller then moves the allocator
 * past the id. What no check here can prevent: a writer outside the `id_allocation` scheme (AIMM,
 * a second daemon with the same offset) registering the same id in the round trip before Hat
 * registers ours — the same race as for allocated ids (docs/backend-event.md, "Ids and revisions").
 */
import { BackendError } from '../../backend/types.js';

export interface ChosenIdView {
  /** The applied state's entry for the id (live or tombstone), if any. */
  entry: { deleted: boolean; revision: number } | undefined;
  /** This daemon has unsettled writes of the id. */
  inFlight: boolean;
  /** The allocator's high-water mark: the highest id known to be (possibly) used. */
  highWater: number;
  stride: number;
  offset: number;
}

export function checkChosenId(id: number, v: ChosenIdView): void {
  if (v.entry !== undefined) {
    throw new BackendError(
      'revision_conflict',
      v.entry.deleted
        ? `model ${id} was deleted (revision ${v.entry.revision}); ids are never reused`
        : `model ${id} exists (revision ${v.entry.revision})`,
    );
  }
  if (v.inFlight) throw new BackendError('revision_conflict', `model ${id} has writes in flight`);
  if (v.stride > 1 && id % v.stride !== v.offset) {
    throw new BackendError(
      'revision_conflict',
      `cannot create model ${id} at a chosen id: it is outside this daemon's id_allocation ` +
        `(id % ${v.stride} == ${v.offset}), so another writer on the prefix may allocate it`,
    );
  }
  if (id <= v.highWater) {
    throw new BackendError(
      'revision_conflict',
      `cannot create model ${id} at a chosen id: the event backend knows ids up to ${v.highWater} ` +
        'under the prefix and cannot tell which of them were ever used (failed writes, malformed ' +
        "or other writers' events); a chosen id must be above that",
    );
  }
}

/** Re-checked right before the register request: another writer's event for the id arrived. */
export function checkChosenIdAtSend(
  id: number,
  entry: { deleted: boolean; revision: number } | undefined,
): void {
  if (entry === undefined) return;
  throw new BackendError(
    'revision_conflict',
    `model ${id} was written by another writer (revision ${entry.revision}) before this create was sent`,
  );
}
