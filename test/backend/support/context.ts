/** Helpers for the backend tests: a quiet context, temp folders, sqlite conf. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { BackendContext } from '../../../src/backend/types.js';
import { MetricsRegistry } from '../../../src/common/metrics.js';

export function testContext(metrics = new MetricsRegistry()): BackendContext {
  return { name: 'test', logger: pino({ level: 'silent' }), metrics, hat: null };
}

/** A fresh temp folder and its removal. */
export function tempDir(prefix = 'aimm-store-sqlite-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `body` with a fresh temp folder, removed afterwards whatever happens. */
export async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const { dir, remove } = tempDir();
  try {
    await body(dir);
  } finally {
    remove();
  }
}
