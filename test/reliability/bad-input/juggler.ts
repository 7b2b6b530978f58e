/**
 * Malformed Juggler requests, judged by an oracle written from docs/juggler-api.md (not from the
 * handlers): for a request it says which fields are invalid (a failure naming one of them, and
 * nothing stored), or, for a valid one, what the backend must answer (the model, not found, a
 * revision conflict) and how the state must change.
 *
 * - In process, for volume: `parseRequest` + `handleRequest` (the control's request path) against
 *   an in-memory backend, logged in or not, with and without users.
 * - Over the wire, against a running daemon: {@link wireCase} builds whole connections of bad
 *   frames and requests (not JSON, wrong shapes, huge or negative ids, oversize blobs, invalid
 *   base64, unknown names, requests before login, binary frames, mixed framings, invalid UTF-8),
 *   each with the close code or error it must cause. They never write anything valid, so a
 *   canary client beside them must not notice them.
 */
import fc from 'fast-check';

export const KNOWN = [
  'login',
  'logout',
  'add_instance',
  'update_instance',
  'get_instance',
  'remove_instance',
  'list_instances',
  'create_instance',
  'fit',
  'predict',
] as const;

/** RFC 4648 §4 standard base64, padded, canonical (zero padding bits). */
export function isStrictBase64(s: string): boolean {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return false;
  const last = s.replace(/=+$/, '');
  const pad = s.length - last.length;
  if (pad === 0) return true;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const v = alphabet.indexOf(last[last.length - 1] as string);
  return pad === 2 ? (v & 0x0f) === 0 : (v & 0x03) === 0;
}

const isId = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
const isRevisionOption = (v: unknown) =>
  v === undefined || v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
const isFlag = (v: unknown) => v === undefined || v === null || typeof v === 'boolean';

/** What the oracle knows of the backend. */
export interface ModelState {
  revision: number;
  modelType: string;
  b64: string;
}

export type Prediction =
  /** Failure naming one of these (regexes), nothing stored. */
  | { kind: 'invalid'; any: RegExp[] }
  | { kind: 'unknown_name' }
  | { kind: 'unauthorized' }
  | { kind: 'not_supported' }
  | { kind: 'not_found'; id: number }
  | { kind: 'conflict'; id: number }
  | { kind: 'login'; ok: boolean }
  | { kind: 'ok' };

/**
 * The outcome docs/juggler-api.md promises for one request. `authorized`: the session may act
 * (logged in, or no users configured); `users`: configured users (username → password hex).
 */
export function predict(
  name: string,
  data: unknown,
  models: ReadonlyMap<number, ModelState>,
  authorized: boolean,
  users: ReadonlyMap<string, string> | null,
): Prediction {
  const d =
    typeof data === 'object' && data !== null && !Array.isArray(data)
      ? (data as Record<string, unknown>)
      : null;
  if (name === 'login') {
    if (d === null || typeof d.username !== 'string' || typeof d.password !== 'string')
      return { kind: 'invalid', any: [/login/] };
    if (users === null) return { kind: 'login', ok: true };
    return {
      kind: 'login',
      ok: users.get(d.username)?.toLowerCase() === d.password.toLowerCase(),
    };
  }
  if (!(KNOWN as readonly string[]).includes(name)) return { kind: 'unknown_name' };
  if (!authorized) return { kind: 'unauthorized' };
  if (name === 'create_instance' || name === 'fit' || name === 'predict')
    return { kind: 'not_supported' };
  if (name === 'logout' || name === 'list_instances') return { kind: 'ok' };
  if (d === null) return { kind: 'invalid', any: [/data must be an object/] };
  const bad: RegExp[] = [];
  const needsType = name === 'add_instance' || name === 'update_instance';
  const needsId = name !== 'add_instance';
  if (needsType) {
    if (typeof d.model_type !== 'string' || d.model_type === '') bad.push(/model_type/);
    if (typeof d.instance_b64 !== 'string' || !isStrictBase64(d.instance_b64))
      bad.push(/instance_b64/);
  }
  if (needsId && !isId(d.instance_id)) bad.push(/instance_id/);
  if (name === 'add_instance') {
    if (d.expected_revision !== undefined && d.expected_revision !== null)
      bad.push(/expected_revision/);
  } else if (name !== 'get_instance' && !isRevisionOption(d.expected_revision)) {
    bad.push(/expected_revision/);
  }
  if (name !== 'remove_instance' && !isFlag(d.meta_only)) bad.push(/meta_only/);
  // A read may look the model up first: a missing one is then the clearer error.
  if (
    name === 'get_instance' &&
    bad.length === 1 &&
    bad[0]?.source === 'meta_only' &&
    isId(d.instance_id)
  )
    bad.push(/^model \d+ not found$/);
  if (bad.length > 0) return { kind: 'invalid', any: bad };
  if (name === 'add_instance') return { kind: 'ok' };
  const id = d.instance_id as number;
  const m = models.get(id);
  if (m === undefined) return { kind: 'not_found', id };
  if (
    name !== 'get_instance' &&
    typeof d.expected_revision === 'number' &&
    d.expected_revision !== m.revision
  )
    return { kind: 'conflict', id };
  return { kind: 'ok' };
}

// ---- generators ------------------------------------------------------------------------------

const validB64 = fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b).toString('base64'));

/** Texts that are not strict standard base64 (each one is checked against the reference). */
export const invalidB64: fc.Arbitrary<string> = fc
  .tuple(
    fc.uint8Array({ minLength: 1, maxLength: 48 }),
    fc.constantFrom(
      'space',
      'newline',
      'urlsafe',
      'junk',
      'nopad',
      'extrapad',
      'innerpad',
      'noncanonical',
      'unicode',
      'truncate',
    ),
    fc.nat(),
  )
  .map(([bytes, how, at]) => {
    const s = Buffer.from(bytes).toString('base64');
    const i = at % (s.length + 1);
    switch (how) {
      case 'space':
        return `${s.slice(0, i)} ${s.slice(i)}`;
      case 'newline':
        return `${s.slice(0, i)}\n${s.slice(i)}`;
      case 'urlsafe':
        return `-_${s}`.slice(0, Math.max(4, s.length));
      case 'junk':
        return `${s.slice(0, i)}!${s.slice(i + 1)}`;
      case 'nopad':
        return s.replace(/=+$/, '') || 'QQ';
      case 'extrapad':
        return `${s}====`;
      case 'innerpad':
        return `QQ==${s}`;
      case 'noncanonical':
        return bytes.length % 3 === 1 ? `${s.slice(0, -3)}R==` : `${s.slice(0, -2)}F=`;
      case 'unicode':
        return `${s.slice(0, i)}é${s.slice(i + 1)}`;
      default:
        return s.slice(0, Math.max(1, s.length - 1 - (i % 3)));
    }
  })
  .filter((s) => !isStrictBase64(s));

const idValue = (ids: number[]) =>
  fc.oneof(
    { weight: 4, arbitrary: ids.length > 0 ? fc.constantFrom(...ids) : fc.constant(1) },
    {
      weight: 3,
      arbitrary: fc.constantFrom<unknown>(
        0,
        -1,
        -0,
        1.5,
        2 ** 53,
        2 ** 53 - 1,
        1e300,
        -1e300,
        '1',
        '',
        null,
        true,
        [1],
        { id: 1 },
      ),
    },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.double() },
  );

const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom<unknown>(null, true, 0, -1, '', 'x', [], {}),
);

export function requestArb(
  ids: number[],
  usernames: string[],
  passwords: string[],
): fc.Arbitrary<{ name: string; data: unknown }> {
  const field = <T>(a: fc.Arbitrary<T>) =>
    fc.option(fc.oneof({ weight: 5, arbitrary: a }, anyValue), { nil: undefined });
  const data = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record(
        {
          model_type: field(fc.oneof(fc.constantFrom('t', 'text.Model', ''), fc.string())),
          instance_b64: field(fc.oneof(validB64, invalidB64)),
          instance_id: field(idValue(ids)),
          expected_revision: field(
            fc.oneof(fc.integer({ min: -2, max: 6 }), fc.constantFrom<unknown>(1.5, '1', null)),
          ),
          meta_only: field(fc.oneof(fc.boolean(), fc.constantFrom<unknown>('yes', 1, 0, null))),
          username: field(fc.constantFrom(...usernames, '', 'nobody')),
          password: field(fc.constantFrom(...passwords, '', 'A'.repeat(64))),
        },
        { requiredKeys: [] },
      ),
    },
    { weight: 1, arbitrary: anyValue },
  );
  const name = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom<string>(...KNOWN) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'no_such',
        'Add_Instance',
        'add_instance ',
        '__proto__',
        'constructor',
        '',
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  );
  return fc.record({ name, data });
}

// ---- wire cases ------------------------------------------------------------------------------

/** One thing a fuzz connection sends, and what it must cause. */
export type WireStep =
  | {
      kind: 'request';
      framing: '0.6' | '0.7';
      id: number;
      text: string;
      /** Segment size (0.7), 0 = one frame. */
      segment: number;
      expect: { success: boolean; data?: RegExp; dataIs?: unknown };
    }
  /** A frame after which the server must close with `code`. */
  | { kind: 'fatal'; frame: string | Buffer; binary?: boolean; code: number };

export interface WireCase {
  framing: '0.6' | '0.7';
  /** Log in first (as the configured user) before the steps. */
  login: boolean;
  steps: WireStep[];
}

/**
 * A connection of bad requests: before login every known request is `unauthorized action`; after
 * it, each request has at least one invalid field. Ends, maybe, with a frame that must close the
 * connection.
 */
export function wireCaseArb(maxMessageSize: number): fc.Arbitrary<WireCase> {
  const brokenField = fc.constantFrom(
    'model_type',
    'instance_b64',
    'instance_id',
    'expected_revision',
    'meta_only',
    'data',
  );
  const badValue: Record<string, fc.Arbitrary<unknown>> = {
    model_type: fc.constantFrom<unknown>('', 42, null, [], { a: 1 }),
    instance_b64: fc.oneof(invalidB64, fc.constantFrom<unknown>(42, null, [], {})),
    instance_id: fc.constantFrom<unknown>(
      0,
      -1,
      -7,
      1.5,
      2 ** 53,
      2 ** 60,
      1e300,
      -1e300,
      '1',
      null,
      [],
      {},
    ),
    expected_revision: fc.constantFrom<unknown>(-1, 1.5, '2', [], {}, 2 ** 53),
    meta_only: fc.constantFrom<unknown>('yes', 1, 0, [], {}),
  };
  const req = fc
    .tuple(
      fc.constantFrom('add_instance', 'update_instance', 'remove_instance', 'get_instance'),
      brokenField,
      fc.uint8Array({ maxLength: 32 }),
      fc.integer({ min: 1, max: 1000 }),
    )
    .chain(([name, field, bytes, id]) => {
      const base: Record<string, unknown> = {
        model_type: 'fuzz.Model',
        instance_b64: Buffer.from(bytes).toString('base64'),
        instance_id: id,
        ...(name === 'add_instance' ? {} : { expected_revision: 1 }),
        meta_only: true,
      };
      const applicable =
        (field === 'model_type' || field === 'instance_b64') &&
        (name === 'remove_instance' || name === 'get_instance')
          ? 'instance_id'
          : field === 'instance_id' && name === 'add_instance'
            ? 'instance_b64'
            : field === 'expected_revision' && name === 'get_instance'
              ? 'instance_id'
              : field === 'meta_only' && name === 'remove_instance'
                ? 'instance_id'
                : field;
      if (applicable === 'data')
        return fc.constantFrom<unknown>(null, 7, 'x', [1, 2], true).map((data) => ({ name, data }));
      return (badValue[applicable] as fc.Arbitrary<unknown>).map((v) => ({
        name,
        data: { ...base, [applicable]: v },
      }));
    });
  const unknown = fc
    .constantFrom('no_such', 'Add_Instance', '__proto__', 'constructor', 'toString', '')
    .map((name) => ({ name, data: null as unknown }));
  // Over the limit, but not so far that the WebSocket layer refuses the frame (limit + 64 KiB).
  const oversize = fc.integer({ min: 1, max: 4000 }).map((k) => ({
    name: 'add_instance',
    data: {
      model_type: 'fuzz.Model',
      instance_b64: 'A'.repeat(4 * Math.ceil((maxMessageSize + k) / 4)),
    } as unknown,
  }));
  const fatal: fc.Arbitrary<WireStep> = fc.oneof(
    fc.constantFrom<WireStep>(
      { kind: 'fatal', frame: '{not json', code: 1002 },
      { kind: 'fatal', frame: '0{"type": "request", "id": 1, ', code: 1002 },
      { kind: 'fatal', frame: '0[]', code: 1002 },
      { kind: 'fatal', frame: '0{"type": "response", "id": 1}', code: 1002 },
      { kind: 'fatal', frame: '0{"type": "request", "id": "7", "name": "x"}', code: 1002 },
      { kind: 'fatal', frame: '0{"type": "request", "id": 1.5, "name": "x"}', code: 1002 },
      { kind: 'fatal', frame: '0{"type": "request", "id": 1e400, "name": "x"}', code: 1002 },
      { kind: 'fatal', frame: '9hello', code: 1002 },
      { kind: 'fatal', frame: 'MIXED', code: 1002 },
      { kind: 'fatal', frame: Buffer.from([0, 1, 2, 255]), binary: true, code: 1003 },
      { kind: 'fatal', frame: Buffer.from([0x30, 0x7b, 0xc3, 0x28, 0x7d]), code: 1007 },
      { kind: 'fatal', frame: Buffer.from([0xff, 0xfe]), code: 1007 },
    ),
    fc
      .string({ minLength: 1, maxLength: 40 })
      .map((s): WireStep => ({ kind: 'fatal', frame: `0{${s}`, code: 1002 })),
  );
  return fc
    .record({
      framing: fc.constantFrom<'0.6' | '0.7'>('0.6', '0.7'),
      login: fc.boolean(),
      reqs: fc.array(
        fc.oneof(
          { weight: 6, arbitrary: req },
          { weight: 1, arbitrary: unknown },
          { weight: 1, arbitrary: oversize },
        ),
        { minLength: 1, maxLength: 8 },
      ),
      segment: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
      end: fc.option(fatal, { nil: null, freq: 2 }),
    })
    .map(({ framing, login, reqs, segment, end }) => {
      const steps: WireStep[] = reqs.map((r, i) => {
        const id = i + 10;
        const text = JSON.stringify({ type: 'request', id, name: r.name, data: r.data });
        const known = (KNOWN as readonly string[]).includes(r.name);
        const expect =
          text.length > maxMessageSize
            ? { success: false, data: /over the limit/ }
            : !known
              ? { success: true, dataIs: { success: false } }
              : !login
                ? { success: false, data: /^unauthorized action$/ }
                : {
                    success: false,
                    // A read may look the model up before it checks meta_only (see predict).
                    data:
                      r.name === 'get_instance'
                        ? /model_type|instance_b64|instance_id|expected_revision|meta_only|data must be an object|^model \d+ not found$/
                        : /model_type|instance_b64|instance_id|expected_revision|meta_only|data must be an object/,
                  };
        return {
          kind: 'request',
          framing,
          id,
          text,
          segment: framing === '0.7' ? segment : 0,
          expect,
        };
      });
      if (end !== null && end.kind === 'fatal' && end.frame === 'MIXED') {
        // The other framing's request: never mixed on one connection.
        const other = '{"type": "request", "id": 99, "name": "list_instances", "data": null}';
        steps.push({ ...end, frame: framing === '0.6' ? `0${other}` : other });
      } else if (end !== null) {
        // A 0.6 connection reads `{...` texts; a leading 0.7 type would be a framing error there.
        if (
          end.kind === 'fatal' &&
          typeof end.frame === 'string' &&
          framing === '0.6' &&
          /^[0-3]/.test(end.frame)
        )
          steps.push({
            ...end,
            frame: `${end.frame.slice(1)}`.startsWith('{') ? end.frame.slice(1) : `{${end.frame}`,
          });
        else steps.push(end);
      }
      return { framing, login, steps };
    });
}
