/**
 * Malformed model events in Hat, judged by a reference classifier written from
 * docs/backend-event.md ("Malformed events"): the bare prefix or more segments → `bad_type`; an id
 * segment that is not a canonical positive decimal up to 2^53 → `bad_id`; a binary payload →
 * `binary_payload`; JSON text that does not parse → `bad_json`; not an object with string `type`
 * and `instance` → `not_aimm_shaped`; `instance` not standard padded base64 → `bad_base64`; no
 * payload → a tombstone; anything else → a model.
 */
import fc from 'fast-check';
import type { Event, EventPayload } from '../../../src/hat/eventer/common.js';

export type Reason =
  | 'bad_type'
  | 'bad_id'
  | 'binary_payload'
  | 'bad_json'
  | 'not_aimm_shaped'
  | 'bad_base64';

export type Expected =
  | { kind: 'model'; id: number; modelType: string; instance: Buffer }
  | { kind: 'tombstone'; id: number }
  | { kind: 'malformed'; reason: Reason; id: number | null };

/** Standard base64 with `=` padding (non-zero padding bits are tolerated, as Python's decoder does). */
function paddedBase64(s: string): Buffer | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return null;
  return Buffer.from(s, 'base64');
}

export function classify(
  prefix: readonly string[],
  type: readonly string[],
  payload: EventPayload | null,
): Expected {
  if (type.length !== prefix.length + 1 || prefix.some((p, i) => type[i] !== p))
    return { kind: 'malformed', reason: 'bad_type', id: null };
  const seg = type[prefix.length] as string;
  const id = /^[1-9][0-9]*$/.test(seg) ? Number(seg) : Number.NaN;
  if (!Number.isSafeInteger(id)) return { kind: 'malformed', reason: 'bad_id', id: null };
  if (payload === null) return { kind: 'tombstone', id };
  if (payload.kind !== 'json') return { kind: 'malformed', reason: 'binary_payload', id };
  let v: unknown;
  try {
    v = JSON.parse(payload.text);
  } catch {
    return { kind: 'malformed', reason: 'bad_json', id };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { kind: 'malformed', reason: 'not_aimm_shaped', id };
  const o = v as Record<string, unknown>;
  if (typeof o.type !== 'string' || typeof o.instance !== 'string')
    return { kind: 'malformed', reason: 'not_aimm_shaped', id };
  const instance = paddedBase64(o.instance);
  if (instance === null) return { kind: 'malformed', reason: 'bad_base64', id };
  return { kind: 'model', id, modelType: o.type, instance };
}

// ---- generators ------------------------------------------------------------------------------

const idSegment = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 10_000 }).map(String) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '0',
      '-3',
      '01',
      '+1',
      '1.0',
      '1e3',
      ' 1',
      '1 ',
      'abc',
      '',
      '١٢',
      '0x10',
      '9007199254740991',
      '9007199254740992',
      '99999999999999999999',
      'NaN',
      'Infinity',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);

export function typeArb(prefix: readonly string[]): fc.Arbitrary<string[]> {
  return fc.oneof(
    { weight: 8, arbitrary: idSegment.map((s) => [...prefix, s]) },
    { weight: 1, arbitrary: fc.constant<string[]>([...prefix]) },
    { weight: 1, arbitrary: idSegment.map((s) => [...prefix, s, 'extra']) },
  );
}

const b64 = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64'));
const badB64 = fc.oneof(
  b64.map((s) => `${s} `),
  b64.map((s) => s.replace(/=+$/, '')).filter((s) => s.length % 4 !== 0),
  b64.map((s) => `-${s.slice(1)}`).filter((s) => s.length > 0),
  b64.map((s) => `${s}=`),
  fc.constantFrom('====', 'QQ=', 'QQ==QQ==', 'Q===', 'é', 'QUJD\nRA=='),
);

/** Payloads: AIMM's shape (with valid or broken parts), other JSON, broken text, binary, none. */
export const payloadArb: fc.Arbitrary<EventPayload | null> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        type: fc.oneof(
          { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
        ),
        instance: fc.oneof(
          { weight: 3, arbitrary: b64 },
          { weight: 2, arbitrary: badB64 },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
        ),
        extra: fc.option(fc.jsonValue({ maxDepth: 1 }), { nil: undefined }),
      })
      .map((o) => ({ kind: 'json' as const, text: JSON.stringify(o) })),
  },
  {
    weight: 1,
    arbitrary: fc
      .jsonValue({ maxDepth: 2 })
      .map((v) => ({ kind: 'json' as const, text: JSON.stringify(v) ?? 'null' })),
  },
  {
    weight: 1,
    arbitrary: fc.string({ maxLength: 20 }).map((text) => ({ kind: 'json' as const, text })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ type: fc.string({ maxLength: 8 }), data: fc.uint8Array({ maxLength: 16 }) })
      .map((b) => ({
        kind: 'binary' as const,
        type: b.type,
        data: b.data,
      })),
  },
  { weight: 1, arbitrary: fc.constant(null) },
);

/** Only what a real Hat server can hold: JSON payloads are valid JSON (it parses them). */
export function storable(p: EventPayload | null): boolean {
  if (p === null || p.kind !== 'json') return true;
  try {
    JSON.parse(p.text);
    return true;
  } catch {
    return false;
  }
}

export function eventArb(prefix: readonly string[]): fc.Arbitrary<Pick<Event, 'type' | 'payload'>> {
  return fc.record({ type: typeArb(prefix), payload: payloadArb });
}
