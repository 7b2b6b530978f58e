/**
 * A backend change as the controls show it to clients: the Juggler control's `model_change`
 * notification data and the HTTP control's `change` events (`GET /changes`), so both transports
 * say the same. Key order is part of the wire format (see `model-json.ts`).
 */
import type { ModelChange } from '../backend/types.js';

export function changeData(c: ModelChange): Record<string, unknown> {
  const d: Record<string, unknown> = {
    change: c.change,
    instance_id: c.instanceId,
    model_type: c.modelType,
    revision: c.revision,
    origin: c.origin,
  };
  if (c.meta !== undefined) {
    d.size = c.meta.size;
    d.sha256 = c.meta.sha256;
    d.updated = c.meta.updated;
  }
  if (c.revisionProvisional === true) d.revision_provisional = true;
  return d;
}
