/**
 * Loading the recorded sessions of the monitor vectors (the team's shared/monitor-vectors/, a
 * verbatim copy of which is test/vectors/monitor/): `monitor-messages.json` and
 * `conversations/*.json`. Their steps have the form of the Hat conversations' ({@link Step}).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FrameStep, Step } from './vectors.js';

export { type Decoded, hex, isFrame, unhex } from './vectors.js';
export type { FrameStep as MonitorStepFrame, Step as MonitorStep };

// dist/test/hat → the repository root is three levels up. MONITOR_VECTORS_DIR wins; else the copy
// in test/vectors/monitor/, else the team's shared/monitor-vectors/ beside the repository.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MONITOR_VECTORS_DIR =
  process.env.MONITOR_VECTORS_DIR ??
  [
    resolve(ROOT, 'test', 'vectors', 'monitor'),
    resolve(ROOT, '..', 'shared', 'monitor-vectors'),
  ].find((d) => existsSync(join(d, 'monitor-messages.json'))) ??
  resolve(ROOT, '..', 'shared', 'monitor-vectors');

/** A recorded monitor session (the fields the tests read; `server` differs between a* and c*). */
export interface MonitorConversation {
  description: string;
  server: unknown;
  connections: Record<
    string,
    { server: string; client: string; accepted_t_ms: number; open_at_end?: boolean }
  >;
  client_actions: string[];
  client_events: { t_ms: number; event: string }[];
  steps: Step[];
}

/** A JSON file of the monitor vectors, by its path below {@link MONITOR_VECTORS_DIR}. */
export function loadMonitorVectors<T = unknown>(file: string): T {
  return JSON.parse(readFileSync(join(MONITOR_VECTORS_DIR, file), 'utf8')) as T;
}

/** The names of `conversations/*.json`, sorted. */
export function monitorConversationFiles(): string[] {
  return readdirSync(join(MONITOR_VECTORS_DIR, 'conversations'))
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** Every recorded session, by file name without `.json`, in name order. */
export function loadMonitorConversations<
  T extends MonitorConversation = MonitorConversation,
>(): Map<string, T> {
  return new Map(
    monitorConversationFiles().map((f) => [
      f.replace(/\.json$/, ''),
      loadMonitorVectors<T>(join('conversations', f)),
    ]),
  );
}

/** Loads `conversations/<prefix>-*.json` (e.g. `a`, `a2`, `c3`), with its file name. */
export function loadMonitorConversation(prefix: string): MonitorConversation & { file: string } {
  const file = monitorConversationFiles().find((f) => f.startsWith(`${prefix}-`));
  if (file === undefined) {
    throw new Error(
      `no monitor conversation '${prefix}' in ${join(MONITOR_VECTORS_DIR, 'conversations')}`,
    );
  }
  return { file, ...loadMonitorVectors<MonitorConversation>(join('conversations', file)) };
}
