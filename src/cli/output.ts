/**
 * The CLI's standard output when it may be closed early: `aimm-store ls | head -1` closes the pipe
 * after one line, and the next write fails with EPIPE. That is the normal end of the output, not a
 * failure: once stdout is closed, writes are dropped, {@link stdoutClosed} resolves (long-running
 * commands such as `watch` stop on it) and the command ends with its usual exit code.
 */

let closed = false;
let resolveClosed: () => void = () => {};
let installed = false;

/** Resolves once stdout is closed by its reader (EPIPE). */
export const stdoutClosed: Promise<void> = new Promise((resolve) => {
  resolveClosed = resolve;
});

/** Whether stdout has been closed by its reader. */
export function isStdoutClosed(): boolean {
  return closed;
}

function isClosedPipe(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

function markClosed(): void {
  if (closed) return;
  closed = true;
  resolveClosed();
}

/**
 * Handles stdout errors once for the whole process: a closed pipe marks stdout closed; any other
 * error (a full disk behind a redirection, ...) is reported on stderr and fails the process.
 */
export function guardStdout(): void {
  if (installed) return;
  installed = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (isClosedPipe(err)) {
      markClosed();
      return;
    }
    process.stderr.write(`aimm-store: cannot write to stdout: ${err.message}\n`);
    process.exit(1);
  });
}

/** Writes to stdout; resolves once written, or at once when stdout is (or becomes) closed. */
export function writeOut(chunk: string | Uint8Array): Promise<void> {
  guardStdout();
  if (closed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (err) => {
      if (err === null || err === undefined) resolve();
      else if (isClosedPipe(err)) {
        markClosed();
        resolve();
      } else reject(err);
    });
  });
}

/** Writes one line to stdout without waiting (dropped once stdout is closed). */
export function writeLine(text: string): void {
  guardStdout();
  if (!closed) process.stdout.write(`${text}\n`);
}
