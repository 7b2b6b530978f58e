/**
 * `Range: bytes=…` for `GET /models/{id}` (RFC 9110 §14): one range is served as 206; several
 * ranges, another unit or a malformed header are ignored (the whole model, 200) as the RFC allows;
 * a syntactically valid range that selects nothing is 416.
 */
export type RangeAnswer =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

export function rangeOf(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$/i.exec(header);
  if (m === null) return { kind: 'full' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'full' };
  // A start beyond 16 digits is beyond any model (an end that large just means the end).
  if (a.length > 16) return { kind: 'unsatisfiable' };
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return { kind: 'unsatisfiable' };
  if (b === '') return { kind: 'partial', start, end: size - 1 };
  const last = Number(b);
  if (last < start) return { kind: 'full' };
  return { kind: 'partial', start, end: Math.min(last, size - 1) };
}
