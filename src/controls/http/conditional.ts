/**
 * Validators and preconditions. The ETag names one revision of one model: `"<revision>-<sha256>"`
 * (strong; weak, `W/"…"`, while the revision is provisional). Two revisions with the same bytes have different ETags, so `If-Match` is an exact
 * compare-and-set on the revision; the hash part makes a stale ETag of another model (or of the
 * same revision number after a store was replaced) fail to match.
 */
import type { ModelMeta } from '../../backend/types.js';

export function etagOf(
  meta: Pick<ModelMeta, 'revision' | 'sha256' | 'revisionProvisional'>,
): string {
  // A provisional revision (a lower bound, docs/backend-event.md) gets a weak ETag: it still
  // validates a cached copy (If-None-Match), but If-Match compares strongly, so it is no
  // compare-and-set on a revision number that is not exact yet.
  const tag = `"${meta.revision}-${meta.sha256}"`;
  return meta.revisionProvisional === true ? `W/${tag}` : tag;
}

/** Is `tag` one of our weak ETags (a provisional revision)? */
export function isProvisionalEtag(tag: string): boolean {
  return tag.startsWith('W/') && parseEtag(tag.slice(2)) !== null;
}

/** The revision and hash of one of our ETags (strong, quoted), or null for anything else. */
export function parseEtag(tag: string): { revision: number; sha256: string } | null {
  const m = /^"([1-9][0-9]{0,15})-([0-9a-f]{64})"$/.exec(tag.trim());
  if (m === null) return null;
  const revision = Number(m[1]);
  return Number.isSafeInteger(revision) ? { revision, sha256: m[2] as string } : null;
}

/** Splits an entity-tag list (`"a", W/"b"`) into its members; commas inside quotes are kept. */
export function etagList(header: string): string[] {
  const out: string[] = [];
  const re = /\s*((?:W\/)?"[^"]*"|[^,\s]+)\s*(?:,|$)/g;
  let m: RegExpExecArray | null = re.exec(header);
  while (m !== null && m[0] !== '') {
    out.push(m[1] as string);
    m = re.exec(header);
  }
  return out;
}

/** Does an `If-None-Match` header value match `etag`? (`*`, lists, weak comparison.) */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const opaque = etag.replace(/^W\//, '');
  return etagList(header).some((t) => t.replace(/^W\//, '') === opaque);
}

/** What a write's preconditions ask for. */
export type WritePrecondition =
  | { kind: 'none' }
  /** `If-Match: *`: the model must exist. */
  | { kind: 'exists' }
  /** `If-Match: <etag>`: the model must be at exactly this revision (and hash). */
  | { kind: 'revision'; revision: number; sha256: string }
  /** `If-Match` with an ETag that cannot be ours (weak, malformed): it never matches. */
  | { kind: 'never'; tag: string }
  /** `If-None-Match: *`: the model must not exist (create only). */
  | { kind: 'absent' };

export class PreconditionSyntaxError extends Error {}

/**
 * Reads `If-Match` / `If-None-Match` of a write. Supported: `If-Match: *`, `If-Match` with one
 * ETag, `If-None-Match: *` (PUT only). Several ETags, both headers at once, or `If-None-Match`
 * with ETags are refused (a single compare-and-set cannot express them).
 */
export function writePrecondition(
  ifMatch: string | undefined,
  ifNoneMatch: string | undefined,
  allowAbsent: boolean,
): WritePrecondition {
  if (ifMatch !== undefined && ifNoneMatch !== undefined)
    throw new PreconditionSyntaxError('give either If-Match or If-None-Match, not both');
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*' || !allowAbsent)
      throw new PreconditionSyntaxError(
        allowAbsent
          ? 'If-None-Match on a write supports only * (create only)'
          : 'If-None-Match is not supported here',
      );
    return { kind: 'absent' };
  }
  if (ifMatch === undefined) return { kind: 'none' };
  if (ifMatch.trim() === '*') return { kind: 'exists' };
  const tags = etagList(ifMatch);
  if (tags.length !== 1)
    throw new PreconditionSyntaxError('If-Match supports * or exactly one ETag');
  const tag = tags[0] as string;
  const parsed = parseEtag(tag);
  if (parsed === null) return { kind: 'never', tag };
  return { kind: 'revision', ...parsed };
}

/** Does an `If-Range` value let a range request through? Only our exact, current ETag does. */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  return header === undefined || (header.trim() === etag && !etag.startsWith('W/'));
}
