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
    this.ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
    for (const dir of dirs) this.addDir(dir);
  }

  /** Loads every `*.yaml`/`*.yml`/`*.json` schema under `dir` (recursively). */
  addDir(dir: string): void {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) this.addDir(p);
      else if (/\.(ya?ml|json)$/.test(name)) this.addFile(p);
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
    return (fn.errors ?? []).map((e) => toIssue(e, basePath));
  }
}

function toIssue(e: ErrorObject, basePath: string): ConfigIssue {
  let path = basePath + pointerToPath(e.instancePath);
  let message = e.message ?? 'invalid';
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    path += pathSegment(missing);
    message = 'is required';
  } else if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    path += pathSegment(extra);
    message = 'is not an allowed property';
  }
  return { path, rule: e.keyword, message };
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
