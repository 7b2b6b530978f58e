/**
 * JSON Schema validation of configuration with ajv. Schemas are YAML files under the package's
 * `schemas/` folder, addressed by their `$id` (e.g. `aimm://server/backend/main.yaml#`); the seed's
 * `id` keyword is accepted as `$id`. Every issue names the JSON path and the rule that failed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { closest } from './suggest.js';

/** One validation failure. `path` is a JSON path like `$.backend.model_prefix[0]`. */
export interface ConfigIssue {
  path: string;
  /** The schema keyword that failed, e.g. `required`, `type`, `additionalProperties`. */
  rule: string;
  message: string;
}

/** The package's `schemas/` folder (dist/src/common → ../../../schemas). */
export const SCHEMAS_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'schemas',
);

export class SchemaRegistry {
  private readonly ajv: Ajv;

  constructor(dirs: string[] = [SCHEMAS_DIR]) {
    // verbose: errors carry the value and the schema they failed on (allowed values, hints).
    this.ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false, verbose: true });
    for (const dir of dirs) this.addDir(dir);
  }

  /**
   * Loads every `*.yaml`/`*.yml`/`*.json` schema under `dir` (recursively), except the HTTP API's
   * OpenAPI description (`openapi.yaml`), which is no config schema.
   */
  addDir(dir: string): void {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) this.addDir(p);
      else if (/\.(ya?ml|json)$/.test(name) && name !== 'openapi.yaml') this.addFile(p);
    }
  }

  /** Loads one schema file (YAML or JSON). */
  addFile(path: string): void {
    this.addSchema(parseYaml(readFileSync(path, 'utf8')), path);
  }

  /** Adds one schema object (its `$id`, or the seed-style `id`, is its address). */
  addSchema(schema: unknown, origin = 'schema'): void {
    if (typeof schema !== 'object' || schema === null)
      throw new Error(`${origin}: not a schema object`);
    const s = { ...(schema as Record<string, unknown>) };
    if (s.$id === undefined && typeof s.id === 'string') {
      s.$id = s.id;
      delete s.id;
    }
    // The seed's `$schema: 'http://json-schema.org/schema#'` is not a meta-schema ajv knows.
    delete s.$schema;
    if (typeof s.$id !== 'string') throw new Error(`${origin}: schema has no $id`);
    this.ajv.addSchema(s);
  }

  has(id: string): boolean {
    return this.ajv.getSchema(id) !== undefined;
  }

  /**
   * The schema id for a loaded module's `confSchema` export, or null when it has none: a string
   * must be the `$id` of a registered schema (the built-ins); an object is registered once under
   * its own `$id` (or seed-style `id`), else under a name made from `specifier`, and compiled at
   * once so that a broken schema is the module's fault. Throws an Error beginning with `what`
   * (e.g. "backend module 'x'") when the export is unusable.
   */
  moduleSchemaId(confSchema: unknown, specifier: string, what: string): string | null {
    if (confSchema === undefined || confSchema === null) return null;
    if (typeof confSchema === 'string') {
      if (this.has(confSchema)) return confSchema;
      throw new Error(`${what} names its config schema '${confSchema}', which is not registered`);
    }
    if (typeof confSchema !== 'object' || Array.isArray(confSchema)) {
      throw new Error(
        `${what} exports 'confSchema' that is neither a schema id nor a schema object`,
      );
    }
    const s = confSchema as Record<string, unknown>;
    const own = typeof s.$id === 'string' ? s.$id : typeof s.id === 'string' ? s.id : undefined;
    const id = own ?? `urn:aimm-store:module-conf:${encodeURIComponent(specifier)}`;
    try {
      if (!this.has(id)) this.addSchema(own === undefined ? { ...s, $id: id } : s, what);
      this.validate(id, {});
    } catch (err) {
      throw new Error(`${what} exports an invalid 'confSchema': ${(err as Error).message}`);
    }
    return id;
  }

  /** Validates `value` against schema `id`; paths are prefixed with `basePath` (e.g. `$.backend`). */
  validate(id: string, value: unknown, basePath = '$'): ConfigIssue[] {
    const fn: ValidateFunction | undefined = this.ajv.getSchema(id);
    if (fn === undefined) throw new Error(`unknown schema ${id}`);
    if (fn(value)) return [];
    return collapseOneOf(fn.errors ?? []).map((e) => toIssue(e, basePath));
  }
}

/**
 * A value that fits no alternative of a `oneOf` makes ajv report every alternative's failure plus
 * the `oneOf` itself (three lines for `eventer_server: "127.0.0.1:23012"`). Kept instead: the
 * failures of the alternative of the value's shape (the deeper ones: `port` of an address object);
 * when every alternative failed on the shape alone, one `type` error on the `oneOf`'s schema, so
 * that its `x-hint` says what is expected.
 */
function collapseOneOf(errors: readonly ErrorObject[]): ErrorObject[] {
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf');
  if (oneOfs.length === 0) return [...errors];
  const out = errors.filter(
    (e) =>
      e.keyword !== 'oneOf' &&
      !(e.keyword === 'type' && oneOfs.some((o) => o.instancePath === e.instancePath)),
  );
  for (const o of oneOfs) {
    const p = o.instancePath;
    if (out.some((e) => e.instancePath === p || e.instancePath.startsWith(`${p}/`))) continue;
    out.push({ ...o, keyword: 'type', params: { type: shapesOf(o.schema) } });
  }
  return out;
}

/** The JSON types a `oneOf`'s alternatives expect (`object, array`). */
function shapesOf(alternatives: unknown): string {
  if (!Array.isArray(alternatives)) return 'another shape';
  const types = alternatives.map((a) => {
    const t = (a as { type?: unknown } | null)?.type;
    return typeof t === 'string' ? t : (a as { $ref?: unknown } | null)?.$ref ? 'object' : '?';
  });
  return [...new Set(types)].join(' or ');
}

function toIssue(e: ErrorObject, basePath: string): ConfigIssue {
  let path = basePath + pointerToPath(e.instancePath);
  let message = e.message ?? 'invalid';
  const hint = hintOf(e.parentSchema);
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    path += pathSegment(missing);
    message = 'is required';
  } else if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    path += pathSegment(extra);
    const known = Object.keys(
      ((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ??
        {}) as Record<string, unknown>,
    );
    const near = closest(extra, known);
    message =
      near === null
        ? 'is not an allowed property'
        : `is not an allowed property; did you mean '${near}'?`;
  } else if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues ?? [];
    const near =
      typeof e.data === 'string'
        ? closest(
            e.data,
            allowed.filter((a) => typeof a === 'string'),
          )
        : null;
    // YAML reads `framing: 0.7` as a number: the allowed value is the string.
    // (Only for numbers and booleans: an object from the file may not even convert to a string.)
    const scalar =
      typeof e.data === 'number' || typeof e.data === 'boolean' ? String(e.data) : null;
    const unquoted = scalar !== null && allowed.includes(scalar) ? `; quote it: "${scalar}"` : '';
    message =
      `must be one of ${allowed.map((a) => show(a)).join(', ')}, not ${show(e.data)}` +
      (near === null ? unquoted : `; did you mean ${show(near)}?`);
  } else if (e.keyword === 'type') {
    const expected = String((e.params as { type?: unknown }).type ?? 'another type');
    message = `${hint ?? `must be ${article(expected)}`}, not ${kindOf(e.data)}`;
    const hostPort =
      typeof e.data === 'string' ? /^\[?([^\s\]]+?)\]?:(\d{1,5})$/.exec(e.data) : null;
    if (hint !== null && hostPort !== null)
      message += `: write {host: ${hostPort[1]}, port: ${hostPort[2]}}`;
  } else if (hint !== null) {
    // A hint replaces ajv's text (a pattern nobody reads); the value is not shown (a secret?).
    message = hint;
  }
  return { path, rule: e.keyword, message };
}

/** A schema's `x-hint`: how to write the value, said where ajv would say only what failed. */
function hintOf(schema: unknown): string | null {
  const h = (schema as { 'x-hint'?: unknown } | null | undefined)?.['x-hint'];
  return typeof h === 'string' ? h.trim() : null;
}

/** A value for a message; never throws, whatever the file held. */
function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  try {
    return JSON.stringify(v) ?? typeof v;
  } catch {
    return kindOf(v);
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** The JSON kind of a value for messages (its text only when harmless: numbers and booleans). */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}

function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : pathSegment(seg)))
    .join('');
}

function pathSegment(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** Formats issues as `FILE: PATH: MESSAGE (rule: RULE)` lines. */
export function formatIssues(file: string, issues: readonly ConfigIssue[]): string[] {
  return issues.map((i) => `${file}: ${i.path}: ${i.message} (rule: ${i.rule})`);
}
