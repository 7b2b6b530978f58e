/** Loads the recorded AIMM sessions in ../shared/juggler-vectors/. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const VECTORS_DIR = process.env.JUGGLER_VECTORS ?? '/work/shared/juggler-vectors';

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
