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
  let id: string | null;
  try {
    id = schemas.moduleSchemaId(mod.confSchema, specifier, `module '${specifier}'`);
  } catch (err) {
    return [{ path: `${basePath}.module`, rule: 'module', message: (err as Error).message }];
  }
  const issues = id === null ? [] : schemas.validate(id, conf, basePath);
  if (issues.length === 0 && typeof mod.checkConf === 'function') {
    issues.push(...(mod.checkConf as (c: unknown, p: string) => ConfigIssue[])(conf, basePath));
  }
  return issues;
}
