/**
 * The Juggler control's machine-readable error codes, shared by the server (which sends them) and
 * the client (which exposes them): one list, so the two cannot drift apart.
 */

/**
 * Why a request failed, as aimm-store's Juggler control reports it beside the error text (the
 * response's `code`; see docs/juggler-api.md, "Error codes"):
 * - `not_found`: no such model;
 * - `revision_conflict`: `expectedRevision` did not match the stored revision;
 * - `unauthorized`: the server requires a login (or the session logged out);
 * - `forbidden`: the logged-in user's role (`read`) does not allow the request (a write);
 * - `not_active`: a standby of a redundant group refuses writes (the text names the active one);
 * - `too_large`: the message or the instance is over a limit;
 * - `invalid`: the request itself is wrong (a bad id, type, base64, an unsupported engine call);
 * - `unavailable`: the backend cannot serve now (Hat unreachable, too many requests in flight);
 * - `closed`: the daemon is stopping;
 * - `internal`: a bug or an unexpected failure (logged by the daemon).
 */
export type RequestErrorCode =
  | 'not_found'
  | 'revision_conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'not_active'
  | 'too_large'
  | 'invalid'
  | 'unavailable'
  | 'closed'
  | 'internal';

/** Every {@link RequestErrorCode}. */
export const REQUEST_ERROR_CODES: readonly RequestErrorCode[] = [
  'not_found',
  'revision_conflict',
  'unauthorized',
  'forbidden',
  'not_active',
  'too_large',
  'invalid',
  'unavailable',
  'closed',
  'internal',
];
