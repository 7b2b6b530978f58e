/**
 * Starting from the snapshot: opening it (a damaged file is replaced and rebuilt from Hat) and
 * loading what it held into the state, the id allocator and the pending writes (its queue of
 * writes acked `queued`, sent once Hat is back).
 */
import type { Logger } from 'pino';
import { refKey } from './event-ref.js';
import type { IdAllocator } from './ids.js';
import type { PendingWrites } from './pending-writes.js';
import { type SnapshotState, SnapshotStore } from './snapshot.js';
import type { ModelState } from './state.js';
import { restoredJob } from './write-jobs.js';

/** Opens and reads the snapshot (a damaged file is replaced and rebuilt from Hat). */
export function openSnapshot(
  path: string,
  prefix: readonly string[],
  logger: Logger,
): { store: SnapshotStore; loaded: SnapshotState } {
  const opened = SnapshotStore.openAndLoad(path, prefix);
  const issue = opened.store.issue;
  if (issue !== null) {
    logger.warn(
      { snapshot: path, issue: issue.kind, movedTo: issue.movedTo },
      `event backend: snapshot unusable (${issue.detail}); rebuilding it from Hat`,
    );
  }
  return opened;
}

export interface LoadTargets {
  state: ModelState;
  ids: IdAllocator;
  pending: PendingWrites;
  logger: Logger;
}

/** Loads what the snapshot held into the state, the id allocator and the queue of writes. */
export function loadSnapshot(snap: SnapshotStore, s: SnapshotState, t: LoadTargets): void {
  const { state, ids, pending, logger } = t;
  state.load(s.entries, s.checkpoint, s.highWater);
  ids.observe(state.highWater);
  if (snap.revisionsProvisional()) {
    // Stopped before a latest_then_history replay completed: replay again (ids stay reserved).
    logger.warn(
      { snapshot: snap.path },
      'event backend: the snapshot holds provisional revisions (the history was not complete); replaying from Hat',
    );
    state.reset();
  }
  for (const q of s.queue) {
    const job = restoredJob(q);
    ids.observe(q.instanceId);
    pending.add(job);
    pending.addDurable(job);
  }
  logger.info(
    {
      snapshot: snap.path,
      models: state.size,
      queued: s.queue.length,
      checkpoint: s.checkpoint === null ? null : refKey(s.checkpoint),
    },
    'event backend: snapshot loaded',
  );
}
