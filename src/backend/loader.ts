/**
 * Loads the configured backend exactly as the seed does: `backend.module` is a module specifier
 * loaded with dynamic `import()`; the module exports `create(conf, context)` (sync or async) and may
 * export `createSubscription(conf)` (the Hat event types it needs) and `confSchema` (how its own
 * part of the config is validated: a schema `$id` registered under `schemas/`, or a schema object).
 *
 * Steps: validate `backend` against `aimm://server/backend/main.yaml#` → import the module →
 * validate the whole `backend` section against the module's `confSchema` → `create(conf, context)`.
 * Every failure becomes one {@link BackendLoadError} whose message names the module and the cause,
 * so the daemon can stop before accepting any client.
 */

import { loadModule } from '../common/load-module.js';
import { type ConfigIssue, SchemaRegistry } from '../common/schema.js';
import type { Backend, BackendConf, BackendContext, BackendModule } from './types.js';

/** The seed's schema for the `backend` section (requires `module`). */
export const MAIN_SCHEMA_ID = 'aimm://server/backend/main.yaml#';

/** What a backend module may export besides {@link BackendModule}. */
export interface BackendModuleExports extends BackendModule {
  /** Schema of the module's config: the `$id` of a schema under `schemas/`, or a schema object. */
  confSchema?: string | Record<string, unknown>;
}

export interface BackendLoadOptions {
  /** Folder that relative module paths are resolved against (the config file's folder). */
  baseDir?: string;
  /** Where schemas are looked up (default: the package's `schemas/`). */
  schemas?: SchemaRegistry;
  /** JSON path of the backend section in the config, for issues (default `$.backend`). */
  basePath?: string;
}

/** Any failure to load, validate or create the configured backend. */
export class BackendLoadError extends Error {
  constructor(
    /** The configured `backend.module` (or `undefined` when it is missing or not a string). */
    readonly module: string | undefined,
    message: string,
    /** Config validation issues, when that is the cause (format them with `formatIssues`). */
    readonly issues: readonly ConfigIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackendLoadError';
  }

  /** As config issues: the validation issues, or else one `module` issue with this message. */
  configIssues(basePath = '$.backend'): ConfigIssue[] {
    if (this.issues.length > 0) return [...this.issues];
    return [{ path: `${basePath}.module`, rule: 'module', message: this.message }];
  }
}

/** A loaded backend module whose config passed validation; nothing is created yet. */
export interface LoadedBackend {
  readonly specifier: string;
  readonly module: BackendModuleExports;
  readonly conf: BackendConf;
  /** The Hat event types the module wants (`createSubscription(conf)`), or `[]`. */
  subscription(): string[][];
  /** Calls the module's `create(conf, context)` and checks that it returned a backend. */
  create(context: BackendContext): Promise<Backend>;
}

let defaultRegistry: SchemaRegistry | undefined;

function registryOf(options: BackendLoadOptions): SchemaRegistry {
  if (options.schemas !== undefined) return options.schemas;
  defaultRegistry ??= new SchemaRegistry();
  return defaultRegistry;
}

/**
 * Validates the `backend` section without creating anything (for `check-config`): the main schema,
 * whether the module loads and has `create`, and the module's own schema. A module that cannot be
 * loaded is reported as an issue at `$.backend.module` with rule `module`.
 */
export async function validateBackendConf(
  conf: unknown,
  options: BackendLoadOptions = {},
): Promise<ConfigIssue[]> {
  try {
    await loadBackend(conf, options);
    return [];
  } catch (err) {
    if (!(err instanceof BackendLoadError)) throw err;
    return err.configIssues(basePathOf(options));
  }
}

/** Validates the section, loads the module and validates the module's own part. */
export async function loadBackend(
  conf: unknown,
  options: BackendLoadOptions = {},
): Promise<LoadedBackend> {
  const schemas = registryOf(options);
  const basePath = basePathOf(options);

  const mainIssues = schemas.validate(MAIN_SCHEMA_ID, conf, basePath);
  if (mainIssues.length > 0) {
    const module = moduleOf(conf);
    throw new BackendLoadError(
      module,
      `backend configuration is invalid: ${describeIssues(mainIssues)}`,
      mainIssues,
    );
  }
  const backendConf = conf as BackendConf;
  const specifier = backendConf.module;
  const what = `backend module '${specifier}'`;

  let mod: BackendModuleExports;
  try {
    mod = await loadModule<BackendModuleExports>(specifier, {
      kind: 'backend',
      functions: ['create'],
      ...(options.baseDir !== undefined ? { baseDir: options.baseDir } : {}),
    });
  } catch (err) {
    throw new BackendLoadError(specifier, errorMessage(err), [], { cause: err });
  }
  if (mod.createSubscription !== undefined && typeof mod.createSubscription !== 'function') {
    throw new BackendLoadError(
      specifier,
      `${what} exports 'createSubscription' but not as a function`,
    );
  }

  let schemaId: string | null;
  try {
    schemaId = schemas.moduleSchemaId(mod.confSchema, specifier, what);
  } catch (err) {
    throw new BackendLoadError(specifier, errorMessage(err), [], { cause: err });
  }
  if (schemaId !== null) {
    const issues = schemas.validate(schemaId, backendConf, basePath);
    if (issues.length > 0) {
      throw new BackendLoadError(
        specifier,
        `${what}: configuration is invalid: ${describeIssues(issues)}`,
        issues,
      );
    }
  }

  return {
    specifier,
    module: mod,
    conf: backendConf,
    subscription: () => subscriptionOf(specifier, mod, backendConf),
    create: (context) => createWith(specifier, mod, backendConf, context),
  };
}

/** Loads, validates and creates the configured backend. */
export async function createBackend(
  conf: unknown,
  context: BackendContext,
  options: BackendLoadOptions = {},
): Promise<Backend> {
  const loaded = await loadBackend(conf, options);
  return loaded.create(context);
}

/** `createSubscription(conf)` of the configured module (loaded and validated first), or `[]`. */
export async function backendSubscription(
  conf: unknown,
  options: BackendLoadOptions = {},
): Promise<string[][]> {
  const loaded = await loadBackend(conf, options);
  return loaded.subscription();
}

const BACKEND_METHODS = [
  'getModels',
  'getModel',
  'createModel',
  'updateModel',
  'deleteModel',
  'status',
  'whenReady',
  'close',
] as const;

async function createWith(
  specifier: string,
  mod: BackendModuleExports,
  conf: BackendConf,
  context: BackendContext,
): Promise<Backend> {
  const what = `backend module '${specifier}'`;
  let backend: unknown;
  try {
    backend = await mod.create(conf, context);
  } catch (err) {
    throw new BackendLoadError(
      specifier,
      `${what} failed to create the backend: ${errorMessage(err)}`,
      [],
      {
        cause: err,
      },
    );
  }
  const missing =
    typeof backend !== 'object' || backend === null
      ? ['everything']
      : BACKEND_METHODS.filter(
          (m) => typeof (backend as Record<string, unknown>)[m] !== 'function',
        );
  if (typeof backend === 'object' && backend !== null && !('changes$' in backend))
    missing.push('changes$');
  if (missing.length > 0) {
    const closable = backend as { close?: unknown } | null;
    if (typeof closable?.close === 'function') {
      await Promise.resolve((closable.close as () => unknown)()).catch(() => undefined);
    }
    throw new BackendLoadError(
      specifier,
      `${what}: create() did not return a backend (missing: ${missing.join(', ')})`,
    );
  }
  return backend as Backend;
}

function subscriptionOf(
  specifier: string,
  mod: BackendModuleExports,
  conf: BackendConf,
): string[][] {
  if (mod.createSubscription === undefined) return [];
  const what = `backend module '${specifier}'`;
  let sub: unknown;
  try {
    sub = mod.createSubscription(conf);
  } catch (err) {
    throw new BackendLoadError(
      specifier,
      `${what}: createSubscription failed: ${errorMessage(err)}`,
      [],
      {
        cause: err,
      },
    );
  }
  const ok =
    Array.isArray(sub) &&
    sub.every((t) => Array.isArray(t) && t.every((s: unknown) => typeof s === 'string'));
  if (!ok) {
    throw new BackendLoadError(
      specifier,
      `${what}: createSubscription must return an array of event types (arrays of strings)`,
    );
  }
  return sub as string[][];
}

function basePathOf(options: BackendLoadOptions): string {
  return options.basePath ?? '$.backend';
}

function moduleOf(conf: unknown): string | undefined {
  const m = (conf as { module?: unknown } | null)?.module;
  return typeof m === 'string' ? m : undefined;
}

function describeIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message} (rule: ${i.rule})`).join('; ');
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
