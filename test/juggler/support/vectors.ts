/**
 * Loads the recorded AIMM sessions: a verbatim copy of the team's shared/juggler-vectors/ kept in
 * test/vectors/juggler/ (see test/vectors/README.md), so a clean clone tests on its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/juggler/support → repository root is four levels up.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

export const VECTORS_DIR = process.env.JUGGLER_VECTORS ?? join(ROOT, 'test', 'vectors', 'juggler');

export interface Step {
  dir: 'c2s' | 's2c';
  t_ms: number;
  ws: 'text' | 'close' | 'ping' | 'pong' | 'eof' | 'reset';
  text?: string;
  close_code?: number;
  length?: number;
  decoded?: Record<string, unknown>;
  prefix?: string;
  payload_length?: number;
  segment_index?: number;
  segments?: number;
  message_length?: number;
  juggler?: 'ping' | 'pong';
}

export interface Recording {
  file: string;
  description: string;
  framing: '0.6' | '0.7' | 'mismatch';
  client_framing?: '0.6' | '0.7';
  server_framing?: '0.6' | '0.7';
  connection: {
    scenario: string;
    role: string;
    opened_at_ms: number;
    other_connections?: string[];
  };
  steps: Step[];
}

export function loadRecordings(): Recording[] {
  return readdirSync(VECTORS_DIR)
    .filter((f) => f.endsWith('.json') && f !== 'index.json')
    .sort()
    .map((file) => ({ file, ...JSON.parse(readFileSync(join(VECTORS_DIR, file), 'utf8')) }));
}
