/**
 * The daemon's logger: pino JSON lines on stdout (journald under systemd), level from `log.level`.
 * Secrets never reach the output: fields named like credentials are censored wherever a log call
 * puts them (a few levels deep), on top of the rule that config is never logged whole.
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogLevel } from './config.js';

/** Field names whose values are secrets (passwords are SHA-256 hex, which is still the credential). */
export const SECRET_KEYS = ['password', 'client_token', 'clientToken', 'token', 'users', 'secret'];

const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

export interface LoggerOptions {
  level: LogLevel;
  name: string;
  /** Defaults to a synchronous stdout stream (nothing is lost on exit). */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { name: options.name, pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
