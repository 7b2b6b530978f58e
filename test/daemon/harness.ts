/**
 * Test harness for the daemon as a child process: spawns `node dist/src/cli/main.js ...`, parses the
 * pino JSON lines on its stdout, waits for lines by predicate (never by time), reads the real ports
 * of port-0 listeners from `listening` lines, and stops it with a signal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createSocket } from 'unix-dgram';

/**
 * Daemons still running. A test that times out never reaches its `finally`; its daemon would keep
 * the test file's process (and the whole run) alive. This root-level hook (registered once per
 * test file that imports the harness) kills whatever is left once the file's tests are over.
 * Outside the test runner (a benchmark using the harness) no hook is registered, so that the
 * process does not turn into a test run; it kills what is left on exit instead.
 */
const live = new Set<ChildProcess>();
const killLive = () => {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
};
if (process.env.NODE_TEST_CONTEXT !== undefined) after(killLive);
else process.on('exit', killLive);

/** dist/test/daemon → repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** Compiled test support modules, loadable by absolute path from a config. */
export const SUPPORT = join(ROOT, 'dist', 'test', 'support');

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export function tempDir(prefix = 'aimm-daemon-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeJson(path: string, value: unknown): string {
  writeFileSync(path, JSON.stringify(value, null, 2));
  return path;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: Buffer | string } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolvePromise({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.end(options.input ?? '');
  });
}

/** A running daemon child process. */
export class DaemonProcess {
  readonly lines: LogLine[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  private exitWaiters: ((err: Error) => void)[] = [];
  private partial = '';

  constructor(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [MAIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.child);
    this.child.stdout?.on('data', (b: Buffer) => this.onStdout(b.toString('utf8')));
    this.child.stderr?.on('data', (b: Buffer) => {
      this.stderr += b.toString('utf8');
    });
    this.exited = new Promise((resolvePromise) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this.child);
        for (const fail of this.exitWaiters) {
          fail(new Error(`daemon exited (${code ?? signal}) first; stderr: ${this.stderr}`));
        }
        this.exitWaiters = [];
        resolvePromise({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private onStdout(text: string): void {
    this.stdout += text;
    this.partial += text;
    const parts = this.partial.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) {
      if (raw.trim() === '') continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        line = { msg: raw, unparsed: true };
      }
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(line)) return true;
        w.resolve(line);
        return false;
      });
    }
  }

  /** The first log line (already seen or future) matching `pred`; rejects if the daemon exits first. */
  waitFor(pred: (l: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return Promise.reject(new Error(`daemon already exited; stderr: ${this.stderr}`));
    }
    return new Promise((resolvePromise, reject) => {
      this.waiters.push({ pred, resolve: resolvePromise });
      this.exitWaiters.push(reject);
    });
  }

  waitForMsg(msg: string): Promise<LogLine> {
    return this.waitFor((l) => l.msg === msg);
  }

  /** The port of the control that logged `listening` with `control: name`. */
  async port(control: string): Promise<number> {
    const line = await this.waitFor((l) => l.msg === 'listening' && l.control === control);
    return Number(line.port);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export function httpRequest(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check` until it holds; fails naming `what` after 20 s (a hang guard, not a timing assertion). */
export async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let receivers = 0;

/** A unix datagram socket bound to a fresh path in `dir`, collecting sd_notify messages. */
export class NotifyReceiver {
  readonly messages: string[] = [];
  readonly path: string;
  private readonly socket;
  private waiters: { pred: (m: string) => boolean; resolve: (m: string) => void }[] = [];

  constructor(dir: string) {
    this.path = join(dir, `notify-${++receivers}.sock`);
    this.socket = createSocket('unix_dgram', (buf) => {
      const m = buf.toString('utf8');
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
    this.socket.on('error', (err: Error) => {
      throw new Error(`notify receiver ${this.path}: ${err.message}`);
    });
    this.socket.bind(this.path);
  }

  /** Every `KEY=VALUE` field of every message, in order. */
  fields(): string[] {
    return this.messages.flatMap((m) => m.split('\n'));
  }

  waitFor(pred: (m: string) => boolean): Promise<string> {
    const seen = this.messages.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolvePromise) => this.waiters.push({ pred, resolve: resolvePromise }));
  }

  close(): void {
    this.socket.close();
    rmSync(this.path, { force: true });
  }
}

/** A config running `backend` with an HTTP control on an ephemeral loopback port. */
export function configWith(
  backend: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name: 'test',
    backend,
    control: [{ module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } }],
    log: { level: 'info' },
    ...extra,
  };
}

export function slowBackend(conf: Record<string, unknown> = {}): Record<string, unknown> {
  return { module: join(SUPPORT, 'slow-backend.js'), ...conf };
}
