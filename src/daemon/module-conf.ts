/**
 * Validates the config part of a loaded backend or control module against the schema the module
 * names in its `confSchema` export: a schema `$id` already known to the registry (the built-ins,
 * under `schemas/`), or a schema object (third-party modules). A module may also export
 * `checkConf(conf, basePath) → ConfigIssue[]` for rules a schema cannot say clearly.
 */
import type { ConfigIssue, SchemaRegistry } from '../common/schema.js';

export interface ConfModule {
  confSchema?: unknown;
  checkConf?: (conf: never, basePath: string) => ConfigIssue[];
}

export function validateModuleConf(
  mod: ConfModule,
  conf: unknown,
  basePath: string,
  schemas: SchemaRegistry,
  specifier: string,
): ConfigIssue[] {
  const id = schemaIdOf(mod.confSchema, schemas, specifier);
  if (id instanceof Error) {
    return [{ path: `${basePath}.module`, rule: 'module', message: id.message }];
  }
  let issues: ConfigIssue[];
  try {
    issues = id === null ? [] : schemas.validate(id, conf, basePath);
  } catch (err) {
    const message = `module '${specifier}' has an unusable confSchema: ${(err as Error).message}`;
    return [{ path: `${basePath}.module`, rule: 'module', message }];
  }
  if (issues.length === 0 && typeof mod.checkConf === 'function') {
    issues.push(...(mod.checkConf as (c: unknown, p: string) => ConfigIssue[])(conf, basePath));
  }
  return issues;
}

function schemaIdOf(
  confSchema: unknown,
  schemas: SchemaRegistry,
  specifier: string,
): string | null | Error {
  if (confSchema === undefined || confSchema === null) return null;
  if (typeof confSchema === 'string') {
    return schemas.has(confSchema)
      ? confSchema
      : new Error(`module '${specifier}' names an unknown schema '${confSchema}'`);
  }
  if (typeof confSchema !== 'object') {
    return new Error(
      `module '${specifier}' exports a confSchema that is neither an id nor a schema`,
    );
  }
  const s = confSchema as Record<string, unknown>;
  const own = typeof s.$id === 'string' ? s.$id : typeof s.id === 'string' ? s.id : undefined;
  const id = own ?? `aimm-store://module/${encodeURIComponent(specifier)}#`;
  if (!schemas.has(id)) {
    try {
      schemas.addSchema(own === undefined ? { ...s, $id: id } : s, `module '${specifier}'`);
    } catch (err) {
      return new Error(`module '${specifier}' exports an invalid confSchema: ${String(err)}`);
    }
  }
  return id;
}
