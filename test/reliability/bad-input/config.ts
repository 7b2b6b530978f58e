/**
 * Malformed configurations. Two valid base configs (sqlite backend; event backend with every
 * option) are broken by mutations derived from the schemas themselves — for every keyword of every
 * schema (`type`, `enum`, `minimum`, `maximum`, `exclusiveMinimum`, `minLength`, `pattern`,
 * `minItems`, `required`, `additionalProperties`, `oneOf`) one value that violates it — plus the
 * daemon's own rules (unknown or broken modules, loopback, unique listeners, one token source,
 * `hat` required, unreadable files) and garbage texts. Each mutation knows the issue it must cause
 * (JSON path and rule), so a validator that accepts a broken config, or reports it elsewhere, fails.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ConfigIssue } from '../../../src/common/schema.js';
import { ROOT } from '../support.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface Mutation {
  /** What it does, for reports. */
  name: string;
  /** The JSON path it touches (`$.a.b[0]`). */
  path: string;
  /** The issue it must cause: rule, and the path the issue is at or below. */
  expect: { path: string; rule: string | null };
  /** Mutates a config in place. */
  apply(config: Record<string, Json>): void;
  /** Needs the event base config (paths under `$.hat`, the event backend's options). */
  base: 'sqlite' | 'event';
}

const HASH = 'a'.repeat(64);

/** A valid config with the sqlite backend and every Juggler and HTTP option set. */
export function sqliteBase(dir: string): Record<string, Json> {
  return {
    name: 'fuzz',
    backend: {
      module: 'aimm-store/backends/sqlite',
      path: join(dir, 'never-created', 'models.db'),
      synchronous: 'full',
      busy_timeout_ms: 100,
      max_instance_bytes: 1000,
      group_commit: { max_writes: 2, max_bytes: 100 },
    },
    control: [
      {
        module: 'aimm-store/controls/juggler',
        server: { host: '127.0.0.1', port: 0, autoflush_delay: 0.2, shutdown_timeout: 0.5 },
        users: [{ username: 'u', password: HASH }],
        state_instances: false,
        framing: 'auto',
        framing_wait: 0.5,
        max_message_size: 2048,
        max_segment_size: 64,
        max_pending_requests: 4,
        max_connections: 4,
        max_send_buffer: 4096,
        ping_delay: 1,
        ping_timeout: 1,
      },
      {
        module: 'aimm-store/controls/http',
        server: { host: '127.0.0.1', port: 0 },
        allow_non_loopback: false,
        models: true,
      },
    ],
    log: { level: 'info' },
    shutdown_timeout: 5,
  };
}

/** A valid config with the event backend (every option) and a `hat` section. */
export function eventBase(dir: string): Record<string, Json> {
  const base = sqliteBase(dir);
  return {
    ...base,
    backend: {
      module: 'aimm-store/backends/event',
      model_prefix: ['aimm', 'model'],
      snapshot: { path: join(dir, 'never-created', 'snapshot.db') },
      ack: 'registered',
      queue_when_disconnected: false,
      id_allocation: { stride: 2, offset: 1 },
      max_batch_events: 10,
      max_batch_bytes: 100,
      max_instance_bytes: 100,
      request_timeout_ms: 100,
      catch_up_page_size: 10,
      reconnect: { min_delay_ms: 1, max_delay_ms: 2 },
      close_timeout_ms: 0,
      standby_switch_ms: 1,
    },
    hat: {
      eventer_server: [{ host: '127.0.0.1', port: 23012 }],
      client_name: 'fuzz',
      client_token: 'secret-token',
      ping_delay: 1,
      ping_timeout: 1,
      connect_timeout: 1,
    },
  };
}

type Schema = Record<string, unknown>;

function loadSchema(rel: string): Schema {
  return parseYaml(readFileSync(join(ROOT, 'schemas', rel), 'utf8')) as Schema;
}

// ---- paths -----------------------------------------------------------------------------------

type Seg = string | number;

function pathText(segs: readonly Seg[]): string {
  return `$${segs.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('')}`;
}

function parentOf(config: Json, segs: readonly Seg[]): Record<string | number, Json> | null {
  let cur: Json = config;
  for (const s of segs.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object') return null;
    cur = (cur as Record<string | number, Json>)[s] as Json;
  }
  return cur !== null && typeof cur === 'object' ? (cur as Record<string | number, Json>) : null;
}

function setAt(config: Json, segs: readonly Seg[], value: Json | undefined): void {
  const parent = parentOf(config, segs);
  const key = segs[segs.length - 1] as Seg;
  if (parent === null) return;
  if (value === undefined) delete parent[key];
  else parent[key] = value;
}

function getAt(config: Json, segs: readonly Seg[]): Json | undefined {
  const parent = parentOf(config, segs);
  return parent === null ? undefined : parent[segs[segs.length - 1] as Seg];
}

// ---- mutations from the schemas --------------------------------------------------------------

/** A value of another JSON type than `type`. */
function wrongType(type: unknown): Json {
  switch (type) {
    case 'string':
      return 42;
    case 'integer':
      return 1.5;
    case 'number':
      return 'seven';
    case 'boolean':
      return 'yes';
    case 'object':
      return ['not', 'an', 'object'];
    case 'array':
      return { not: 'an array' };
    default:
      return null;
  }
}

function walk(
  schemaIn: Schema,
  value: Json | undefined,
  segs: Seg[],
  base: 'sqlite' | 'event',
  out: Mutation[],
  root: Schema,
): void {
  const schema = resolve(schemaIn, root);
  const path = pathText(segs);
  const set = (name: string, rule: string | null, v: Json | undefined, expectPath = path) =>
    out.push({
      name: `${path} ${name}`,
      path,
      expect: { path: expectPath, rule },
      base,
      apply: (c) => setAt(c, segs, v),
    });
  if (segs.length > 0) {
    // Inside a oneOf a value of the wrong type may fit another alternative (an object where a
    // list of addresses was: an address); its issues are that alternative's, any rule will do.
    if (typeof schema.type === 'string')
      set(
        `wrong type (${schema.type})`,
        schema['x-one-of-alternative'] === true ? null : 'type',
        wrongType(schema.type),
      );
    if (Array.isArray(schema.enum)) set('not in enum', 'enum', 'no-such-value');
    if (typeof schema.minimum === 'number')
      set(
        'below minimum',
        'minimum',
        schema.type === 'integer' ? schema.minimum - 1 : schema.minimum - 0.5,
      );
    if (typeof schema.maximum === 'number')
      set(
        'above maximum',
        'maximum',
        schema.type === 'integer' ? schema.maximum + 1 : schema.maximum + 0.5,
      );
    if (typeof schema.exclusiveMinimum === 'number')
      set('at exclusive minimum', 'exclusiveMinimum', schema.exclusiveMinimum);
    if (typeof schema.minLength === 'number' && schema.minLength > 0)
      set('too short', 'minLength', '');
    if (typeof schema.pattern === 'string') set('not matching its pattern', 'pattern', 'not-hex!');
    if (typeof schema.minItems === 'number' && schema.minItems > 0)
      set('too few items', 'minItems', []);
    if (Array.isArray(schema.oneOf)) set('matching no alternative', null, { host: 7 });
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(schema.required) && !Array.isArray(value)) {
    for (const key of schema.required as string[]) {
      if (!(key in value)) continue;
      const child = [...segs, key];
      out.push({
        name: `${path} without ${key}`,
        path: pathText(child),
        expect: { path: pathText(child), rule: 'required' },
        base,
        apply: (c) => setAt(c, child, undefined),
      });
    }
  }
  if (schema.additionalProperties === false && !Array.isArray(value)) {
    const child = [...segs, 'no_such_key'];
    out.push({
      name: `${path} with an unknown key`,
      path: pathText(child),
      expect: { path: pathText(child), rule: 'additionalProperties' },
      base,
      apply: (c) => setAt(c, child, true),
    });
  }
  const props = schema.properties as Record<string, Schema> | undefined;
  if (props !== undefined && !Array.isArray(value)) {
    for (const [key, sub] of Object.entries(props)) {
      if (typeof sub.$ref === 'string' && !sub.$ref.startsWith('#')) continue; // another part
      if (!(key in value)) continue;
      walk(sub, (value as Record<string, Json>)[key], [...segs, key], base, out, root);
    }
  }
  // Inside a oneOf: the alternative of the value's shape (an address, or a list of them).
  const alternatives = (schema.oneOf as Schema[] | undefined)?.map((a) => resolve(a, root)) ?? [];
  const alt = alternatives.find((a) => (a.type === 'array') === Array.isArray(value));
  if (alt !== undefined)
    walk({ ...alt, oneOf: undefined, 'x-one-of-alternative': true }, value, segs, base, out, root);
  if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items as Schema;
    value.forEach((v, i) => {
      walk(items, v, [...segs, i], base, out, root);
    });
  }
}

/** A local `$ref` (`#/definitions/x`) replaced by what it points at. */
function resolve(schema: Schema, root: Schema): Schema {
  const ref = schema.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return schema;
  let cur: unknown = root;
  for (const seg of ref.slice(2).split('/')) cur = (cur as Record<string, unknown>)[seg];
  return { ...(cur as Schema), ...schema, $ref: undefined };
}

/** Every schema-derived mutation of both base configs. */
export function schemaMutations(dir: string): Mutation[] {
  const out: Mutation[] = [];
  const main = loadSchema('main.yaml');
  const parts: [Schema, Seg[]][] = [
    [loadSchema('controls/juggler.yaml'), ['control', 0]],
    [loadSchema('controls/http.yaml'), ['control', 1]],
  ];
  for (const [baseName, base] of [
    ['sqlite', sqliteBase(dir)],
    ['event', eventBase(dir)],
  ] as const) {
    const mine: Mutation[] = [];
    walk(main, base, [], baseName, mine, main);
    const backend = loadSchema(
      baseName === 'sqlite' ? 'backend/sqlite.yaml' : 'backend/event.yaml',
    );
    walk(backend, base.backend, ['backend'], baseName, mine, backend);
    walk(loadSchema('backend/main.yaml'), base.backend, ['backend'], baseName, mine, backend);
    if (baseName === 'sqlite')
      for (const [schema, segs] of parts)
        walk(schema, getAt(base, segs), segs, baseName, mine, schema);
    // The sqlite base covers everything but the event backend and `hat`.
    out.push(
      ...(baseName === 'sqlite'
        ? mine
        : mine.filter((m) => m.path.startsWith('$.backend') || m.path.startsWith('$.hat'))),
    );
  }
  return dedupe(out);
}

function dedupe(ms: Mutation[]): Mutation[] {
  const seen = new Set<string>();
  return ms.filter((m) => {
    const k = `${m.base} ${m.name}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Files for module and token-file rules: a module without `create`, one that throws on import. */
export function writeFixtures(dir: string): { noCreate: string; throws: string; notAFile: string } {
  mkdirSync(join(dir, 'fixtures'), { recursive: true });
  const noCreate = join(dir, 'fixtures', 'no-create.mjs');
  writeFileSync(noCreate, 'export const hello = 1;\n');
  const throws = join(dir, 'fixtures', 'throws.mjs');
  writeFileSync(throws, "throw new Error('boom at import');\n");
  const notAFile = join(dir, 'fixtures');
  return { noCreate, throws, notAFile };
}

/** The daemon's own rules, each with the issue it must cause. */
export function ruleMutations(dir: string): Mutation[] {
  const f = writeFixtures(dir);
  const m = (
    base: 'sqlite' | 'event',
    name: string,
    path: string,
    rule: string,
    apply: (c: Record<string, Json>) => void,
  ): Mutation => ({ name, path, expect: { path, rule }, base, apply });
  const backendModule = (name: string, spec: string) =>
    m('sqlite', `backend module ${name}`, '$.backend.module', 'module', (c) => {
      (c.backend as Record<string, Json>).module = spec;
    });
  const controlModule = (name: string, spec: string) =>
    m('sqlite', `control module ${name}`, '$.control[1].module', 'module', (c) => {
      ((c.control as Json[])[1] as Record<string, Json>).module = spec;
    });
  const host = (i: number) => (c: Record<string, Json>, h: string) => {
    (((c.control as Json[])[i] as Record<string, Json>).server as Record<string, Json>).host = h;
  };
  return [
    backendModule('that does not exist', 'aimm-store/backends/nope'),
    backendModule('not installed', 'no-such-package-xyz'),
    backendModule('file missing', './missing-backend.js'),
    backendModule('without create', f.noCreate),
    backendModule('throwing at import', f.throws),
    backendModule('a folder', f.notAFile),
    controlModule('that does not exist', 'aimm-store/controls/nope'),
    controlModule('without create', f.noCreate),
    controlModule('throwing at import', f.throws),
    m('sqlite', 'HTTP on 0.0.0.0', '$.control[1].server.host', 'loopback', (c) =>
      host(1)(c, '0.0.0.0'),
    ),
    m('sqlite', 'HTTP on ::', '$.control[1].server.host', 'loopback', (c) => host(1)(c, '::')),
    m('sqlite', 'HTTP on a LAN address', '$.control[1].server.host', 'loopback', (c) =>
      host(1)(c, '192.168.1.10'),
    ),
    m('sqlite', 'HTTP on a host name', '$.control[1].server.host', 'loopback', (c) =>
      host(1)(c, 'example.org'),
    ),
    m('sqlite', 'open Juggler on 0.0.0.0', '$.control[0].users', 'loopback_without_users', (c) => {
      host(0)(c, '0.0.0.0');
      delete ((c.control as Json[])[0] as Record<string, Json>).users;
    }),
    m('sqlite', 'two controls on one port', '$.control[1].server', 'unique', (c) => {
      for (const i of [0, 1])
        (((c.control as Json[])[i] as Record<string, Json>).server as Record<string, Json>).port =
          9950;
    }),
    m('event', 'token and token file', '$.hat.client_token_file', 'exclusive', (c) => {
      (c.hat as Record<string, Json>).client_token_file = join(dir, 'token');
    }),
    m('event', 'event backend without hat', '$.hat', 'required', (c) => {
      delete c.hat;
    }),
    m('event', 'unreadable token file', '$.hat.client_token_file', 'file', (c) => {
      const hat = c.hat as Record<string, Json>;
      delete hat.client_token;
      hat.client_token_file = join(dir, 'no-such-token');
    }),
    m('event', 'token file is a folder', '$.hat.client_token_file', 'file', (c) => {
      const hat = c.hat as Record<string, Json>;
      delete hat.client_token;
      hat.client_token_file = dir;
    }),
  ];
}

/**
 * What a mutation's issue depends on: its own path; for a broken module the whole part (its
 * schema cannot be checked without it); for a control's own rules (loopback) the whole control
 * (they run once its schema passed); for rules across parts, everything.
 */
function scopeOf(m: Mutation): string {
  const rule = m.expect.rule;
  if (rule === 'unique' || (rule === 'required' && m.path === '$.hat')) return '$';
  if (rule === 'exclusive' || rule === 'file') return '$.hat';
  const part = /^\$\.(backend|control\[\d+\])/.exec(m.path)?.[0];
  if (part !== undefined && (rule === 'loopback' || rule === 'loopback_without_users')) return part;
  if (part !== undefined && m.path === `${part}.module`) return part;
  return m.path;
}

function overlaps(a: string, b: string): boolean {
  const inside = (x: string, y: string) =>
    x === y || x.startsWith(`${y}.`) || x.startsWith(`${y}[`);
  return a === '$' || b === '$' || inside(a, b) || inside(b, a);
}

/** Mutations that do not interfere (no scope inside another's), all of one base config. */
export function disjoint(ms: readonly Mutation[]): Mutation[] {
  const out: Mutation[] = [];
  const base = ms[0]?.base;
  for (const m of ms) {
    if (m.base !== base) continue;
    if (!out.some((o) => overlaps(scopeOf(o), scopeOf(m)))) out.push(m);
  }
  return out;
}

/** Does `issues` hold the issue `m` must cause? */
export function causes(issues: readonly ConfigIssue[], m: Mutation): boolean {
  const p = m.expect.path;
  return issues.some(
    (i) =>
      (m.expect.rule === null || i.rule === m.expect.rule) &&
      (i.path === p || i.path.startsWith(`${p}.`) || i.path.startsWith(`${p}[`)),
  );
}

/** The shape every issue must have: a JSON path, a rule, a message. */
export function wellFormed(i: ConfigIssue): boolean {
  return (
    typeof i.path === 'string' &&
    i.path.startsWith('$') &&
    typeof i.rule === 'string' &&
    /^[A-Za-z_]+$/.test(i.rule) &&
    typeof i.message === 'string' &&
    i.message.trim() !== ''
  );
}
