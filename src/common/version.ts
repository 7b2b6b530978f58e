/** This package's version, read from its package.json (for `--version`, logs and metrics). */
import { readFileSync } from 'node:fs';

/** This package's version (from its package.json); 'unknown' if unreadable. */
export function packageVersion(): string {
  try {
    // dist/src/common → the package root (beside dist/) is three levels up.
    const url = new URL('../../../package.json', import.meta.url);
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
