/**
 * Response headers describing one stored model (GET/HEAD /models/{id}). The model type is
 * percent-encoded (UTF-8) because it is free text and header values are not. The ETag names the
 * revision (`conditional.ts`).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { ModelMeta } from '../../backend/types.js';
import { etagOf } from './conditional.js';

export function modelHeaders(meta: ModelMeta): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'X-Model-Id': String(meta.instanceId),
    'X-Model-Type': encodeURIComponent(meta.modelType),
    'X-Model-Revision': String(meta.revision),
    'X-Model-Sha256': meta.sha256,
    ETag: etagOf(meta),
    'Cache-Control': 'no-cache',
  };
  // The revision is a lower bound still being counted (docs/backend-event.md); the ETag is weak.
  if (meta.revisionProvisional === true) headers['X-Model-Revision-Provisional'] = 'true';
  if (/^[0-9a-f]{64}$/.test(meta.sha256)) {
    headers['Repr-Digest'] = `sha-256=:${Buffer.from(meta.sha256, 'hex').toString('base64')}:`;
  }
  const updated = Date.parse(meta.updated);
  if (!Number.isNaN(updated)) headers['Last-Modified'] = new Date(updated).toUTCString();
  return headers;
}
