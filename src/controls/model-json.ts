/**
 * A stored model's metadata as the controls show it to clients: HTTP `GET /models`, the Juggler
 * replies (`list_instances`, `meta_only`, `get_instance`) and the Juggler state's entries, all with
 * the keys the CLI prints. AIMM's keys come first, in AIMM's order (`instance_id`, `model_type`,
 * and `instance` when the base64 bytes are given), then ours (`revision`, `size`, `sha256`,
 * `updated`, `revision_provisional: true` while the revision is a lower bound, and `content_type`
 * where the backend kept one). Key order is part of the wire format (the Juggler control writes
 * Python's `json.dumps` text in insertion order).
 */
import type { ModelMeta, ModelRevision } from '../backend/types.js';

export function modelJson(meta: ModelMeta, instanceB64?: string): Record<string, unknown> {
  const e: Record<string, unknown> = { instance_id: meta.instanceId, model_type: meta.modelType };
  if (instanceB64 !== undefined) e.instance = instanceB64;
  e.revision = meta.revision;
  e.size = meta.size;
  e.sha256 = meta.sha256;
  e.updated = meta.updated;
  // Only while the revision is a lower bound (docs/backend-event.md): exact models keep the shape.
  if (meta.revisionProvisional === true) e.revision_provisional = true;
  if (meta.contentType !== undefined) e.content_type = meta.contentType;
  return e;
}

/** One entry of a model's history (Juggler `get_history`, HTTP `/models/{id}/revisions`, CLI). */
export function revisionJson(r: ModelRevision): Record<string, unknown> {
  return {
    instance_id: r.instanceId,
    model_type: r.modelType,
    revision: r.revision,
    size: r.size,
    sha256: r.sha256,
    updated: r.updated,
    deleted: r.deleted,
    origin: r.origin,
    available: r.available,
    current: r.current,
    ...(r.contentType !== undefined ? { content_type: r.contentType } : {}),
  };
}
