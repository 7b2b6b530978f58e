/**
 * Response headers describing one stored model (GET/HEAD /models/{id}). The model type is
 * percent-encoded (UTF-8) because it is free text and header values are not.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { ModelMeta } from '../../backend/types.js';

export function modelHeaders(meta: ModelMeta): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'X-Model-Id': String(meta.instanceId),
    'X-Model-Type': encodeURIComponent(meta.modelType),
    'X-Model-Revision': String(meta.revision),
    'X-Model-Sha256': meta.sha256,
    ETag: etagOf(meta),
    'Cache-Control': 'no-cache',
  };
  if (/^[0-9a-f]{64}$/.test(meta.sha256)) {
    headers['Repr-Digest'] = `sha-256=:${Buffer.from(meta.sha256, 'hex').toString('base64')}:`;
  }
  const updated = Date.parse(meta.updated);
  if (!Number.isNaN(updated)) headers['Last-Modified'] = new Date(updated).toUTCString();
  return headers;
}

/** A strong validator: the bytes' SHA-256 (the body is exactly those bytes). */
export function etagOf(meta: ModelMeta): string {
  return `"${meta.sha256}"`;
}

/** Does an `If-None-Match` header value match `etag`? (`*`, lists, weak forms.) */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const value = header.trim();
  if (value === '*') return true;
  return value
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === etag);
}
