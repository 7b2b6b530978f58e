/**
 * Reads a configuration file: YAML, or JSON (by a `.json` suffix; YAML is a superset, but JSON's own
 * parser gives clearer errors). Failures become {@link ConfigIssue}s at `$` with rule `file` or
 * `syntax`, so they print like every other config error.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { ConfigIssue } from '../common/schema.js';

export type ReadResult = { ok: true; value: unknown } | { ok: false; issues: ConfigIssue[] };

export function readConfigFile(file: string): ReadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : (err as Error).message;
    return { ok: false, issues: [{ path: '$', rule: 'file', message: `cannot read: ${why}` }] };
  }
  return parseConfigText(text, file.endsWith('.json') ? 'json' : 'yaml');
}

export function parseConfigText(text: string, format: 'json' | 'yaml'): ReadResult {
  if (format === 'json') {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (err) {
      return syntax(`invalid JSON: ${(err as Error).message}`);
    }
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first !== undefined) return syntax(`invalid YAML: ${oneLine(first.message)}`);
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (err) {
    return syntax(`invalid YAML: ${oneLine((err as Error).message)}`);
  }
}

function syntax(message: string): ReadResult {
  return { ok: false, issues: [{ path: '$', rule: 'syntax', message }] };
}

function oneLine(s: string): string {
  return s.split('\n')[0]?.trim() ?? s;
}
