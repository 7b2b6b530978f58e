/** Running the compiled `aimm-store hat ...` as a child process, for the `hat` CLI tests. */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/hat → dist/src/cli/main.js. */
export const MAIN = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'src',
  'cli',
  'main.js',
);

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `aimm-store hat ARGS` to completion (15 s at most), with `input` on stdin (none: closed). */
export function cli(args: string[], input?: Buffer): Promise<Run> {
  return new Promise((resolvePromise) => {
    const child = execFile(
      process.execPath,
      [MAIN, 'hat', ...args],
      { timeout: 15_000 },
      (err, stdout, stderr) => {
        resolvePromise({
          code: err ? ((err as { code?: number }).code ?? null) : 0,
          stdout,
          stderr,
        });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}
