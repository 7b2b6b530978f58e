/**
 * Rolling a model back to an earlier revision, over any backend with history: a new revision with
 * the old bytes, model type and content type (where kept), written with compare-and-set against the revision the caller saw (or the
 * current one when read here), so a concurrent write makes the rollback fail with
 * `revision_conflict` instead of being overwritten.
 */
import { NoHistoryError } from './no-history.js';
import { type Backend, BackendError, type WriteResult } from './types.js';

export async function rollbackModel(
  backend: Backend,
  instanceId: number,
  toRevision: number,
  expectedRevision?: number,
): Promise<WriteResult> {
  if (backend.getRevision === undefined) {
    throw new NoHistoryError('this backend keeps no history: nothing to roll back to');
  }
  const current = await backend.getModel(instanceId);
  if (current === null) {
    throw new BackendError(
      'not_found',
      `model ${instanceId} not found (a deleted model cannot be rolled back; put its old bytes as a new model)`,
    );
  }
  if (toRevision === current.revision) {
    throw new BackendError('invalid', `model ${instanceId} is at revision ${toRevision} already`);
  }
  const old = await backend.getRevision(instanceId, toRevision);
  if (old === null) {
    throw new BackendError(
      'not_found',
      `revision ${toRevision} of model ${instanceId} is not kept (see its history)`,
    );
  }
  return backend.updateModel(instanceId, old.modelType, old.instance, {
    expectedRevision: expectedRevision ?? current.revision,
    ...(old.contentType !== undefined ? { contentType: old.contentType } : {}),
  });
}
