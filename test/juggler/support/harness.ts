/**
 * Hosts the Juggler control in-process for tests: a backend (memory by default), a pino logger
 * whose JSON lines are kept for assertions, a metrics registry, and the control's URL.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Backend } from '../../../src/backend/types.js';
import { MetricsRegistry } from '../../../src/common/metrics.js';
import type { JugglerConf } from '../../../src/controls/juggler/conf.js';
import { create } from '../../../src/controls/juggler.js';
import type { Control } from '../../../src/controls/types.js';
import { MemoryBackend } from '../../support/memory-backend.js';

/** sha256("admin"): the password of the recordings' user. */
export const ADMIN_HASH = '8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918';
export const ADMIN = { username: 'admin', password: ADMIN_HASH };

export interface Harness {
  url: string;
  port: number;
  control: Control;
  backend: Backend;
  metrics: MetricsRegistry;
  /** Every log line written so far (raw JSON text). */
  logLines: string[];
  close(): Promise<void>;
}

export type ConfOverrides = Partial<Omit<JugglerConf, 'server'>> & {
  server?: Partial<JugglerConf['server']>;
};

export async function startJuggler(
  overrides: ConfOverrides = {},
  backend: Backend = new MemoryBackend(),
): Promise<Harness> {
  const { server, ...rest } = overrides;
  const conf = {
    module: 'aimm-store/controls/juggler',
    server: { host: '127.0.0.1', port: 0, autoflush_delay: 0.02, ...server },
    framing_wait: 0.1,
    ...rest,
  };
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(
        ...String(chunk)
          .split('\n')
          .filter((l) => l !== ''),
      );
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const metrics = new MetricsRegistry();
  const control = await create(conf, {
    name: 'test',
    logger,
    metrics,
    backend,
    status: () => ({ ready: true, backend: backend.status() }),
  });
  const port = control.address.port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    control,
    backend,
    metrics,
    logLines,
    async close() {
      await control.close();
      await backend.close();
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` until it holds (or fails after `timeoutMs` with `what`). */
export async function until(
  predicate: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
