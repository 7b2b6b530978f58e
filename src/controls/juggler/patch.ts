/**
 * JSON Patch (RFC 6902) diffs between two JSON values, as hat-juggler's state sync sends them:
 * objects are compared member by member (removed members first, then added ones, then changed
 * ones recursively), everything else is replaced whole. Identical references are skipped without
 * looking inside, so diffing two immutable snapshots that share unchanged parts is cheap.
 */

export type PatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'replace'; path: string; value: unknown };

export function diff(src: unknown, dst: unknown): PatchOp[] {
  const ops: PatchOp[] = [];
  compare('', src, dst, ops);
  return ops;
}

/**
 * The ops {@link diff} gives for the object members `keys` of `src` and `dst` at `path`, when every
 * other member is the same in both: removed ones first, then added ones, then changed ones, each in
 * the order of `keys` (which must be the objects' own key order).
 */
export function diffMembers(
  path: string,
  src: Readonly<Record<string, unknown>>,
  dst: Readonly<Record<string, unknown>>,
  keys: readonly string[],
): PatchOp[] {
  const ops: PatchOp[] = [];
  for (const key of keys)
    if (Object.hasOwn(src, key) && !Object.hasOwn(dst, key))
      ops.push({ op: 'remove', path: `${path}/${escapePointerSegment(key)}` });
  for (const key of keys)
    if (!Object.hasOwn(src, key) && Object.hasOwn(dst, key))
      ops.push({ op: 'add', path: `${path}/${escapePointerSegment(key)}`, value: dst[key] });
  for (const key of keys)
    if (Object.hasOwn(src, key) && Object.hasOwn(dst, key))
      compare(`${path}/${escapePointerSegment(key)}`, src[key], dst[key], ops);
  return ops;
}

export function escapePointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function compare(path: string, src: unknown, dst: unknown, ops: PatchOp[]): void {
  if (src === dst) return;
  if (isPlainObject(src) && isPlainObject(dst)) {
    for (const key of Object.keys(src)) {
      if (!Object.hasOwn(dst, key))
        ops.push({ op: 'remove', path: `${path}/${escapePointerSegment(key)}` });
    }
    for (const key of Object.keys(dst)) {
      if (!Object.hasOwn(src, key))
        ops.push({ op: 'add', path: `${path}/${escapePointerSegment(key)}`, value: dst[key] });
    }
    for (const key of Object.keys(src)) {
      if (Object.hasOwn(dst, key))
        compare(`${path}/${escapePointerSegment(key)}`, src[key], dst[key], ops);
    }
    return;
  }
  if (!deepEqual(src, dst)) ops.push({ op: 'replace', path, value: dst });
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (isPlainObject(a)) {
    if (!isPlainObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) if (!Object.hasOwn(b, k) || !deepEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}
