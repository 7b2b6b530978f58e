/**
 * The bad-input campaign's in-process targets (volume): fast-check properties over the code that
 * reads what a peer or an operator sends — config validation, the Juggler request path, the model
 * event decoder, chatter frames and eventer messages. Each returns how many inputs it tried and the
 * counterexamples it found (fast-check's report, with the seed and path to replay it).
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { decodeModelEvent } from '../../../src/backends/event/format.js';
import { type ConfigIssue, SchemaRegistry } from '../../../src/common/schema.js';
import { Users } from '../../../src/controls/juggler/auth.js';
import {
  type HandlerEnv,
  handleRequest,
  type SessionAccess,
} from '../../../src/controls/juggler/handlers.js';
import { MessageError, parseRequest } from '../../../src/controls/juggler/messages.js';
import { checkConfig } from '../../../src/daemon/config.js';
import { parseConfigText } from '../../../src/daemon/config-file.js';
import { HatConnectionError, ProtocolError } from '../../../src/hat/chatter/errors.js';
import { FrameReader } from '../../../src/hat/chatter/framing.js';
import { decodeBody, encodeFrame } from '../../../src/hat/chatter/message.js';
import * as codec from '../../../src/hat/eventer/codec.js';
import { loadVectors, unhex } from '../../hat/vectors.js';
import { MemoryBackend } from '../../support/memory-backend.js';
import { sha256 } from '../support.js';
import {
  causes,
  disjoint,
  eventBase,
  type Json,
  type Mutation,
  ruleMutations,
  schemaMutations,
  sqliteBase,
  wellFormed,
} from './config.js';
import { classify, eventArb } from './hat-events.js';
import { type ModelState, predict, requestArb } from './juggler.js';

export interface TargetResult {
  target: string;
  inputs: number;
  failures: string[];
  /** Target-specific counts (rules hit, outcomes seen, ...). */
  detail: Record<string, number>;
  durationMs: number;
}

// biome-ignore lint/suspicious/noExplicitAny: RunDetails of any property
function record(res: TargetResult, details: fc.RunDetails<any>): void {
  if (details.failed) res.failures.push(report(details));
}

/** The error first (the counterexample can be long), then fast-check's report to replay it. */
// biome-ignore lint/suspicious/noExplicitAny: RunDetails of any property
export function report(details: fc.RunDetails<any>): string {
  const err = details.errorInstance;
  const why = err instanceof Error ? err.message : String(err);
  return `${why}\n${fc.defaultReportMessage(details) ?? ''}`;
}

/** A target's result, its clock started (`durationMs` holds the start until {@link done}). */
export function start(target: string): TargetResult {
  return { target, inputs: 0, failures: [], detail: {}, durationMs: Date.now() };
}

export function done(r: TargetResult): TargetResult {
  r.durationMs = Date.now() - r.durationMs;
  return r;
}

/** Adds `n` to the count `k` of a result's detail. */
export const bump = (d: Record<string, number>, k: string, n = 1) => {
  d[k] = (d[k] ?? 0) + n;
};

// ---- config ----------------------------------------------------------------------------------

const clone = <T>(v: T): T => structuredClone(v);

export async function fuzzConfig(runs: number, seed: number, dir: string): Promise<TargetResult> {
  const r = start('config');
  const schemas = new SchemaRegistry();
  const opts = { baseDir: dir, schemas, files: 'error' as const };
  const check = async (raw: unknown): Promise<ConfigIssue[]> => {
    r.inputs++;
    const c = await checkConfig(raw, opts);
    for (const i of [...c.issues, ...c.warnings])
      if (!wellFormed(i)) throw new Error(`malformed issue ${JSON.stringify(i)}`);
    if (c.issues.length === 0 && c.config === null) throw new Error('no issues, but no config');
    return c.issues;
  };
  const bases = { sqlite: sqliteBase(dir), event: eventBase(dir) };
  for (const [name, base] of Object.entries(bases)) {
    const issues = await check(base);
    if (issues.length > 0)
      r.failures.push(`the valid ${name} base config has issues: ${JSON.stringify(issues)}`);
  }
  const all: Mutation[] = [...schemaMutations(dir), ...ruleMutations(dir)];
  r.detail.mutations = all.length;
  // Every mutation alone: the issue it must cause, and only well-formed issues.
  for (const m of all) {
    const c = clone(bases[m.base]);
    m.apply(c);
    const issues = await check(c);
    if (!causes(issues, m))
      r.failures.push(
        `${m.name}: expected ${m.expect.rule} at ${m.expect.path}, got ${JSON.stringify(issues)}`,
      );
    else bump(r.detail, `rule ${m.expect.rule ?? 'oneOf'}`);
  }
  const perProperty = Math.max(1, Math.floor(runs / 3));
  // Several mutations at once: each causes its issue.
  record(
    r,
    await fc.check(
      fc.asyncProperty(fc.shuffledSubarray(all, { minLength: 1, maxLength: 5 }), async (ms) => {
        const chosen = disjoint(ms);
        const base = chosen[0]?.base ?? 'sqlite';
        const c = clone(bases[base]);
        for (const m of chosen) m.apply(c);
        const issues = await check(c);
        for (const m of chosen)
          if (!causes(issues, m))
            throw new Error(
              `${m.name}: expected ${m.expect.rule} at ${m.expect.path}, got ${JSON.stringify(issues)}`,
            );
      }),
      { numRuns: perProperty, seed },
    ),
  );
  // Anything at any path: a clear verdict, never a throw.
  const paths = [...new Set(all.map((m) => m.path))];
  record(
    r,
    await fc.check(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom<'sqlite' | 'event'>('sqlite', 'event'),
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.constantFrom<Json>(-0, 1e308, -1e308, 2 ** 53, '', '\u0000', 'x'.repeat(5000), [], {}),
        ),
        async (path, base, value) => {
          const c = clone(bases[base]);
          setPath(c, path, value as Json);
          await check(c);
        },
      ),
      { numRuns: perProperty, seed: seed + 1 },
    ),
  );
  // Texts: YAML and JSON parsing never throws; what parses is checked like any config.
  const validYaml = JSON.stringify(bases.sqlite, null, 2);
  record(
    r,
    await fc.check(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.string({ maxLength: 100, unit: 'grapheme' }),
          fc
            .tuple(fc.nat(), fc.nat({ max: 40 }), fc.string({ maxLength: 6 }))
            .map(([at, del, ins]) => {
              const i = at % validYaml.length;
              return validYaml.slice(0, i) + ins + validYaml.slice(i + del);
            }),
          fc.constantFrom(
            'a: b: c',
            'key: [unclosed',
            '- - -',
            '{"a": 1,}',
            'x: &a [*a]',
            'a: 1\na: 2',
            '\t- x',
            '%YAML 9.9\n---\n',
          ),
        ),
        fc.constantFrom<'yaml' | 'json'>('yaml', 'json'),
        async (text, format) => {
          r.inputs++;
          const parsed = parseConfigText(text, format);
          if (!parsed.ok) {
            if (!parsed.issues.every((i) => wellFormed(i) && i.rule === 'syntax'))
              throw new Error(`bad syntax issue ${JSON.stringify(parsed.issues)}`);
            bump(r.detail, 'syntax errors');
            return;
          }
          await check(parsed.value);
        },
      ),
      { numRuns: perProperty, seed: seed + 2 },
    ),
  );
  return done(r);
}

function setPath(config: Json, path: string, value: Json): void {
  const segs = [...path.slice(1).matchAll(/\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]/g)].map((m) =>
    m[1] !== undefined ? m[1] : Number(m[2]),
  );
  let cur = config as Record<string | number, Json>;
  for (const s of segs.slice(0, -1)) {
    const next = cur[s];
    if (next === null || typeof next !== 'object') return;
    cur = next as Record<string | number, Json>;
  }
  cur[segs[segs.length - 1] as string | number] = value;
}

// ---- the Juggler request path ----------------------------------------------------------------

const ADMIN_HASH = sha256('admin');
const silent = pino({ level: 'silent' });

export async function fuzzJugglerRequests(runs: number, seed: number): Promise<TargetResult> {
  const r = start('juggler requests');
  const userMap = new Map([['admin', ADMIN_HASH]]);
  const users = new Users([{ username: 'admin', password: ADMIN_HASH }]);
  const arb = fc.record({
    withUsers: fc.boolean(),
    loggedIn: fc.boolean(),
    reqs: fc.array(
      requestArb([1, 2, 3, 4], ['admin', 'root'], [ADMIN_HASH, ADMIN_HASH.toUpperCase()]),
      {
        minLength: 1,
        maxLength: 6,
      },
    ),
  });
  record(
    r,
    await fc.check(
      fc.asyncProperty(arb, async ({ withUsers, loggedIn, reqs }) => {
        const backend = new MemoryBackend();
        for (const t of ['a', 'b', 'c']) await backend.createModel(t, Buffer.from(t));
        const session = new FakeSession(!withUsers || loggedIn, withUsers);
        const env: HandlerEnv = {
          backend,
          users: withUsers ? users : null,
          logger: silent,
          onLoginFailure: () => {},
        };
        for (const [k, q] of reqs.entries()) {
          if (session.closing) break;
          r.inputs++;
          const text = JSON.stringify({ type: 'request', id: k, name: q.name, data: q.data });
          const req = parseRequest(text);
          if (req.id !== k || req.name !== q.name) throw new Error(`parseRequest changed ${text}`);
          const before = await stateOf(backend);
          const p = predict(
            req.name,
            req.data,
            before,
            session.authorized,
            withUsers ? userMap : null,
          );
          const out = await handleRequest(req.name, req.data, session, env);
          const after = await stateOf(backend);
          bump(r.detail, p.kind);
          judge(p, req, out, before, after, session);
        }
      }),
      { numRuns: runs, seed },
    ),
  );
  // Raw texts into parseRequest: a request or a MessageError, never anything else.
  record(
    r,
    fc.check(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ''),
          fc
            .record(
              {
                type: fc.jsonValue({ maxDepth: 1 }),
                id: fc.jsonValue({ maxDepth: 1 }),
                name: fc.jsonValue({ maxDepth: 1 }),
              },
              { requiredKeys: [] },
            )
            .map((o) => JSON.stringify(o)),
        ),
        (text) => {
          r.inputs++;
          try {
            const req = parseRequest(text);
            if (!Number.isSafeInteger(req.id) || typeof req.name !== 'string')
              throw new Error(`accepted ${text}`);
          } catch (err) {
            if (!(err instanceof MessageError)) throw err;
          }
        },
      ),
      { numRuns: runs, seed: seed + 1 },
    ),
  );
  return done(r);
}

class FakeSession implements SessionAccess {
  closing = false;
  readonly role = 'write';
  constructor(
    public authorized: boolean,
    private readonly withUsers: boolean,
  ) {}
  login(): void {
    this.authorized = true;
  }
  logout(): void {
    if (this.withUsers) this.authorized = false;
  }
  closeAfterResponse(): void {
    this.closing = true;
  }
}

async function stateOf(backend: MemoryBackend): Promise<Map<number, ModelState>> {
  const out = new Map<number, ModelState>();
  for (const m of await backend.getModels()) {
    const full = await backend.getModel(m.instanceId);
    out.set(m.instanceId, {
      revision: m.revision,
      modelType: m.modelType,
      b64: Buffer.from(full?.instance ?? []).toString('base64'),
    });
  }
  return out;
}

function same(a: Map<number, ModelState>, b: Map<number, ModelState>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, m] of a) {
    const o = b.get(id);
    if (
      o === undefined ||
      o.revision !== m.revision ||
      o.b64 !== m.b64 ||
      o.modelType !== m.modelType
    )
      return false;
  }
  return true;
}

function judge(
  p: ReturnType<typeof predict>,
  req: { name: string; data: unknown },
  out: { success: boolean; data: unknown },
  before: Map<number, ModelState>,
  after: Map<number, ModelState>,
  session: FakeSession,
): void {
  const what = `${req.name} ${JSON.stringify(req.data)?.slice(0, 200)} → ${JSON.stringify(out).slice(0, 200)} (expected ${p.kind})`;
  const fail = (why: string) => {
    throw new Error(`${why}: ${what}`);
  };
  const text = typeof out.data === 'string' ? out.data : '';
  const unchanged = () => {
    if (!same(before, after)) fail('the request failed, but the models changed');
  };
  switch (p.kind) {
    case 'invalid':
      if (out.success || !p.any.some((re) => re.test(text))) fail('not refused naming a bad field');
      unchanged();
      return;
    case 'unknown_name':
      if (!out.success || JSON.stringify(out.data) !== '{"success":false}') fail('unknown name');
      unchanged();
      return;
    case 'unauthorized':
      if (out.success || text !== 'unauthorized action') fail('not unauthorized');
      unchanged();
      return;
    case 'not_supported':
      if (out.success || !/does not run them/.test(text)) fail('engine call not refused');
      unchanged();
      return;
    case 'not_found':
      if (out.success || text !== `model ${p.id} not found`) fail('not "not found"');
      unchanged();
      return;
    case 'conflict':
      if (
        out.success ||
        !new RegExp(`^model ${p.id} is at revision \\d+, expected \\d+$`).test(text)
      )
        fail('not a revision conflict');
      unchanged();
      return;
    case 'login':
      if (!out.success || JSON.stringify(out.data) !== JSON.stringify({ success: p.ok }))
        fail('login');
      if (p.ok !== session.authorized && p.ok) fail('login did not authorize');
      if (!p.ok && !session.closing) fail('a failed login must close the connection');
      unchanged();
      return;
    case 'ok':
      break;
  }
  if (!out.success) fail('a valid request failed');
  const d = (req.data ?? {}) as Record<string, unknown>;
  const reply = out.data as Record<string, unknown>;
  switch (req.name) {
    case 'add_instance': {
      const added = [...after.keys()].filter((id) => !before.has(id));
      const id = added[0];
      if (added.length !== 1 || after.size !== before.size + 1) fail('not exactly one model added');
      const m = after.get(id as number) as ModelState;
      if (m.b64 !== d.instance_b64 || m.modelType !== d.model_type || m.revision !== 1)
        fail('stored something else');
      if (reply.instance_id !== id) fail('reply names another id');
      return;
    }
    case 'update_instance': {
      const id = d.instance_id as number;
      const m = after.get(id);
      if (
        m === undefined ||
        m.b64 !== d.instance_b64 ||
        m.revision !== (before.get(id)?.revision ?? 0) + 1
      )
        fail('not updated');
      return;
    }
    case 'remove_instance': {
      const id = d.instance_id as number;
      if (after.has(id) || after.size !== before.size - 1) fail('not removed');
      if (reply.revision !== (before.get(id)?.revision ?? 0) + 1) fail('deletion revision');
      return;
    }
    case 'get_instance': {
      const m = before.get(d.instance_id as number) as ModelState;
      if (reply.revision !== m.revision || reply.model_type !== m.modelType) fail('wrong model');
      if (d.meta_only !== true && reply.instance !== m.b64) fail('wrong bytes');
      unchanged();
      return;
    }
    case 'list_instances':
      if (!Array.isArray(out.data) || out.data.length !== before.size) fail('list');
      unchanged();
      return;
    default:
      unchanged();
      return;
  }
}

// ---- model events ----------------------------------------------------------------------------

export function fuzzModelEvents(runs: number, seed: number): TargetResult {
  const r = start('model events');
  const prefix = ['aimm', 'model'];
  record(
    r,
    fc.check(
      fc.property(eventArb(prefix), (e) => {
        r.inputs++;
        const want = classify(prefix, e.type, e.payload);
        const got = decodeModelEvent(prefix, e);
        bump(r.detail, want.kind === 'malformed' ? want.reason : want.kind);
        if (want.kind === 'malformed') {
          if (got.kind !== 'malformed' || got.reason !== want.reason)
            throw new Error(`expected ${want.reason}, got ${JSON.stringify(got)}`);
          if (got.instanceId !== want.id)
            throw new Error(`id ${got.instanceId}, expected ${want.id}`);
          if (typeof got.detail !== 'string' || got.detail === '') throw new Error('no detail');
          return;
        }
        if (got.kind !== want.kind || got.instanceId !== want.id)
          throw new Error(
            `expected ${want.kind} ${want.id}, got ${JSON.stringify(got).slice(0, 200)}`,
          );
        if (want.kind === 'model' && got.kind === 'model') {
          if (got.modelType !== want.modelType || !Buffer.from(got.instance).equals(want.instance))
            throw new Error('decoded another model');
        }
      }),
      { numRuns: runs, seed },
    ),
  );
  return done(r);
}

// ---- chatter frames and eventer messages -----------------------------------------------------

const decoders: [string, (d: Uint8Array) => unknown][] = [
  [codec.MSG_INIT_REQ, codec.decodeInitReq],
  [codec.MSG_INIT_RES, codec.decodeInitRes],
  [codec.MSG_STATUS_NOTIFY, codec.decodeStatusNotify],
  [codec.MSG_EVENTS_NOTIFY, codec.decodeEventsNotify],
  [codec.MSG_EVENTS_ACK, codec.decodeEventsAck],
  [codec.MSG_REGISTER_REQ, codec.decodeRegisterReq],
  [codec.MSG_REGISTER_RES, codec.decodeRegisterRes],
  [codec.MSG_QUERY_REQ, codec.decodeQueryReq],
  [codec.MSG_QUERY_RES, codec.decodeQueryRes],
];

let validFramesCache: Buffer[] | null = null;

/** Real eventer messages from the golden vectors, each framed as chatter sends it. */
export function validFrames(): Buffer[] {
  if (validFramesCache !== null) return validFramesCache;
  const messages = loadVectors<{ messages: { name: string; hex: string }[] }>(
    'eventer-messages.json',
  ).messages;
  validFramesCache = messages.map((m, i) =>
    encodeFrame({
      id: i + 2,
      first: i + 2,
      owner: true,
      token: true,
      last: true,
      type: m.name,
      data: unhex(m.hex),
    }),
  );
  return validFramesCache;
}

/** A byte string mutated a few times: flips, overwrites, inserts, deletions, truncation. */
export function mutated(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Buffer> {
  const op = fc.record({
    k: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
    at: fc.nat(),
    v: fc.integer({ min: 0, max: 255 }),
    n: fc.integer({ min: 1, max: 8 }),
  });
  return fc.tuple(base, fc.array(op, { minLength: 1, maxLength: 4 })).map(([b, ops]) => {
    let out = Buffer.from(b);
    for (const o of ops) {
      const at = out.length === 0 ? 0 : o.at % out.length;
      if (o.k === 'flip' && out.length > 0) out[at] = (out[at] as number) ^ (1 << (o.v % 8));
      else if (o.k === 'set' && out.length > 0) out[at] = o.v;
      else if (o.k === 'insert')
        out = Buffer.concat([out.subarray(0, at), Buffer.from([o.v]), out.subarray(at)]);
      else if (o.k === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + o.n)]);
      else if (o.k === 'truncate') out = out.subarray(0, at);
    }
    return out;
  });
}

export function fuzzChatter(runs: number, seed: number): TargetResult {
  const r = start('chatter and SBS');
  const frames = validFrames();
  const stream = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    mutated(fc.constantFrom(...frames)),
    fc.array(mutated(fc.constantFrom(...frames)), { maxLength: 4 }).map((a) => Buffer.concat(a)),
  );
  const MAX = 4096;
  record(
    r,
    fc.check(
      fc.property(
        stream,
        fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 10 }),
        (bytes, sizes) => {
          r.inputs++;
          const reader = new FrameReader(MAX);
          let i = 0;
          let k = 0;
          try {
            while (i < bytes.length) {
              const n = sizes.length === 0 ? bytes.length : (sizes[k++ % sizes.length] as number);
              reader.push(bytes.subarray(i, i + n), (body) => {
                const msg = decodeBody(body);
                const dec = decoders.find(([name]) => name === msg.type)?.[1];
                if (dec !== undefined) {
                  try {
                    dec(msg.data);
                    bump(r.detail, 'valid messages');
                  } catch (err) {
                    if (!(err instanceof ProtocolError)) throw err;
                    bump(r.detail, 'bad messages');
                  }
                }
              });
              if (reader.buffered > MAX) throw new Error(`buffered ${reader.buffered} > ${MAX}`);
              i += n;
            }
          } catch (err) {
            if (!(err instanceof HatConnectionError)) throw err;
            bump(r.detail, 'bad frames');
          }
        },
      ),
      { numRuns: runs, seed },
    ),
  );
  const messages = loadVectors<{ messages: { name: string; hex: string }[] }>(
    'eventer-messages.json',
  ).messages;
  record(
    r,
    fc.check(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          mutated(fc.constantFrom(...messages.map((m) => unhex(m.hex)))),
        ),
        (data) => {
          for (const [, dec] of decoders) {
            r.inputs++;
            try {
              dec(data);
            } catch (err) {
              if (!(err instanceof ProtocolError)) throw err;
            }
          }
        },
      ),
      { numRuns: Math.max(1, Math.floor(runs / 4)), seed: seed + 1 },
    ),
  );
  return done(r);
}
