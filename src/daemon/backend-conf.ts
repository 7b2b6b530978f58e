/**
 * The backend's part of the configuration, checked without creating the backend (through the
 * backend loader): its module loads and exports `create`, its own schema accepts the part, and
 * whether it needs Hat (a module whose `createSubscription(conf)` returns event types talks to a Hat
 * event server).
 */
import { BackendLoadError, type LoadedBackend, loadBackend } from '../backend/loader.js';
import type { ConfigIssue, SchemaRegistry } from '../common/schema.js';

export type BackendPartCheck =
  | { issues: ConfigIssue[]; loaded: null; needsHat: false }
  | { issues: []; loaded: LoadedBackend; needsHat: boolean };

export async function validateBackendPart(
  conf: unknown,
  options: { baseDir: string; schemas: SchemaRegistry },
): Promise<BackendPartCheck> {
  let loaded: LoadedBackend;
  let subscription: string[][];
  try {
    loaded = await loadBackend(conf, { ...options, basePath: '$.backend' });
    subscription = loaded.subscription();
  } catch (err) {
    if (!(err instanceof BackendLoadError)) throw err;
    return { issues: err.configIssues('$.backend'), loaded: null, needsHat: false };
  }
  return { issues: [], loaded, needsHat: subscription.length > 0 };
}
