/** What the model routes check first: readiness, the id in the path, the model type. */
import { parseContentType } from '../../backend/content-type.js';
import type { Exchange } from './exchange.js';
import { header, sendError } from './send.js';

const ID_PATTERN = /^[1-9][0-9]{0,15}$/;

/** The longest model type accepted over HTTP (characters). */
export const MAX_TYPE_LENGTH = 1024;

/** False (answered 503) while the daemon is not ready. */
export function ready({ req, res, options }: Exchange): boolean {
  if (options.context.status().ready) return true;
  sendError(res, req, 503, 'not ready', { headers: { 'Retry-After': '1' } });
  return false;
}

/** The instance id of `/models/{id}`, or null (answered 400). */
export function instanceIdOf({ req, res, id }: Exchange): number | null {
  const n = Number(id);
  if (ID_PATTERN.test(id) && Number.isSafeInteger(n)) return n;
  sendError(res, req, 400, 'invalid model id: expected a positive integer', { code: 'invalid' });
  return null;
}

/**
 * The media type of an upload (its `Content-Type`, normalized), kept as the model's content type;
 * undefined when the request has none; null when answered (400: not a media type, too long).
 */
export function contentTypeOf({ req, res }: Exchange): string | undefined | null {
  const raw = header(req, 'content-type');
  if (raw === undefined) return undefined;
  const parsed = parseContentType(raw);
  if (parsed.ok) return parsed.value;
  sendError(res, req, 400, `Content-Type: ${parsed.why}`, { code: 'invalid' });
  return null;
}

/**
 * The model type of an upload: `?type=` (URL query encoding) or `X-Model-Type` (percent-encoded
 * UTF-8, as GET returns it); both may be given if equal. Null when answered (400).
 */
export function modelTypeOf({ req, res, query }: Exchange): string | null {
  const fail = (message: string): null => {
    sendError(res, req, 400, message, { code: 'invalid' });
    return null;
  };
  const fromQuery = query.getAll('type');
  if (fromQuery.length > 1) return fail('give the type query parameter once');
  const raw = header(req, 'x-model-type');
  let fromHeader: string | undefined;
  if (raw !== undefined) {
    try {
      fromHeader = decodeURIComponent(raw.trim());
    } catch {
      return fail('X-Model-Type must be percent-encoded UTF-8');
    }
  }
  const q = fromQuery[0];
  if (q !== undefined && fromHeader !== undefined && q !== fromHeader)
    return fail('the type query parameter and X-Model-Type differ');
  const type = q ?? fromHeader;
  if (type === undefined)
    return fail('the model type is required: ?type=T or an X-Model-Type header');
  if (type === '') return fail('the model type must not be empty');
  if (type.length > MAX_TYPE_LENGTH)
    return fail(`the model type is longer than ${MAX_TYPE_LENGTH} characters`);
  return type;
}
