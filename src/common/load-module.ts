/**
 * Loads a module named in the configuration (`backend.module`, `control[].module`) with dynamic
 * `import()`, as the seed does with Python module names.
 *
 * - Built-ins are package specifiers through this package's export map: `aimm-store/backends/sqlite`.
 * - A file path (`./x.js`, `../x.js`, `/abs/x.js`, `file:` URL) is resolved against `baseDir`
 *   (the config file's folder, or the working directory).
 * - Any other bare specifier is an installed package: resolved from this package first, then from
 *   `baseDir` (so a package installed beside the config works too).
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export class ModuleLoadError extends Error {
  constructor(
    readonly specifier: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ModuleLoadError';
  }
}

/** Imports `specifier` and checks that it exports the named functions. */
export async function loadModule<T>(
  specifier: string,
  options: { kind: string; functions: string[]; baseDir?: string },
): Promise<T> {
  const baseDir = options.baseDir ?? process.cwd();
  const what = `${options.kind} module '${specifier}'`;
  let mod: Record<string, unknown>;
  try {
    mod = (await importSpecifier(specifier, baseDir)) as Record<string, unknown>;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ModuleLoadError(specifier, `${what} cannot be loaded: ${reason}`, { cause: err });
  }
  for (const fn of options.functions) {
    if (typeof mod[fn] !== 'function') {
      throw new ModuleLoadError(specifier, `${what} does not export a function '${fn}'`);
    }
  }
  return mod as T;
}

async function importSpecifier(specifier: string, baseDir: string): Promise<unknown> {
  if (specifier.startsWith('file:')) return import(specifier);
  if (specifier.startsWith('.') || isAbsolute(specifier)) {
    const path = isAbsolute(specifier) ? specifier : resolve(baseDir, specifier);
    return import(pathToFileURL(path).href);
  }
  try {
    return await import(specifier);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    let resolved: string;
    try {
      resolved = createRequire(join(baseDir, 'noop.js')).resolve(specifier);
    } catch {
      throw err;
    }
    return import(pathToFileURL(resolved).href);
  }
}

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED';
}
