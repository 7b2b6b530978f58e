/**
 * Where the configuration holds secrets, and the warning for a config file others can read.
 * Secrets: every `password` under a control's `users`, `hat.client_token`, and any other key named
 * like a credential (third-party modules included).
 */
import { statSync } from 'node:fs';
import { SECRET_KEYS } from './logger.js';

/** JSON paths of every non-empty secret value in `value`. */
export function secretPaths(value: unknown, path = '$'): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretPaths(v, `${path}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const p = `${path}.${k}`;
    if (k !== 'users' && SECRET_KEYS.includes(k) && typeof v === 'string' && v !== '') out.push(p);
    else out.push(...secretPaths(v, p));
  }
  return out;
}

/**
 * A warning when `file` holds secrets and is readable by every user (mode o+r), else null.
 * The file's mode is read with stat; a file that cannot be stat'ed gets no warning.
 */
export function worldReadableWarning(file: string, config: unknown): string | null {
  const secrets = secretPaths(config);
  if (secrets.length === 0) return null;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return null;
  }
  if ((mode & 0o004) === 0) return null;
  const octal = (mode & 0o777).toString(8).padStart(3, '0');
  return (
    `config file ${file} is world-readable (mode ${octal}) and holds secrets at ` +
    `${secrets.join(', ')}; restrict it, e.g. chmod 640 and chgrp to the daemon's group`
  );
}
