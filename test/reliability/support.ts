/**
 * What the reliability campaigns share: a seeded random source (every run is reproducible from its
 * seed), the daemon as a child process that can be SIGKILLed (its log lines parsed as they come,
 * scanned for secrets and fatal lines, the real ports of port-0 listeners read from `listening`),
 * temporary folders, config files, HTTP probes and small waiting helpers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/reliability → repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** Compiled test support modules (loadable by absolute path from a config). */
export const SUPPORT = join(ROOT, 'dist', 'test', 'support');
export const HERE = dirname(fileURLToPath(import.meta.url));

// ---- randomness ------------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32): campaigns print their seed so any run can be replayed. */
export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
  /** Picks a key by weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((n, [, w]) => n + w, 0);
    let x = this.next() * total;
    for (const [k, w] of entries) {
      x -= w;
      if (x < 0) return k;
    }
    return (entries[entries.length - 1] as [K, number])[0];
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(Math.floor(this.next() * 4294967296), i);
    for (; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---- time ------------------------------------------------------------------------------------

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves `value` after `ms` without keeping the process alive (for races against a hang). */
export function deadline<T>(ms: number, value: T): Promise<T> {
  return new Promise((r) => setTimeout(() => r(value), ms).unref());
}

/** Polls `check` until it holds; rejects with `what` after `timeoutMs` (a hang guard, not a timing assertion). */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---- files -----------------------------------------------------------------------------------

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes a JSON config readable by its owner only (the campaigns' configs hold secrets). */
export function writeConfig(path: string, config: unknown): string {
  writeFileSync(path, JSON.stringify(config, null, 2));
  chmodSync(path, 0o600);
  return path;
}

// ---- child processes -------------------------------------------------------------------------

const children = new Set<ChildProcess>();

/** Tracks a child so that {@link killChildren} can end it (long runs interrupted by a signal). */
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** SIGKILLs every tracked child still running. */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** For long-run scripts: the value after `--name` on the command line, or `dflt`. */
export function cliArg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] as string) : dflt;
}

/** For long-run scripts: prints a line with a timestamp on stdout, unless `--quiet` was given. */
export function progressLog(line: string): void {
  if (!process.argv.includes('--quiet'))
    process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

/** For long-run scripts: on SIGINT/SIGTERM, kill the children and exit 130. */
export function killChildrenOnSignal(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      killChildren();
      process.exit(130);
    });
}

// ---- the daemon ------------------------------------------------------------------------------

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface DaemonOptions {
  /** Strings that must never appear in the daemon's output (passwords, tokens). */
  secrets?: readonly string[];
  /** Log lines kept for reports (the most recent). */
  keepLines?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * `aimm-store serve --conf FILE` as a child process. Everything it prints is scanned as it arrives:
 * a secret in any line, a `fatal` line or an exit the campaign did not cause are recorded in
 * `problems` (the campaigns fail on them).
 */
export class Daemon {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly recent: string[] = [];
  readonly problems: string[] = [];
  readonly started = Date.now();
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** Set when the campaign killed or stopped it on purpose. */
  expectedExit = false;
  private partial = '';
  private stderrText = '';
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  private readonly seen: LogLine[] = [];
  private readonly keep: number;

  constructor(
    configFile: string,
    private readonly options: DaemonOptions = {},
  ) {
    this.keep = options.keepLines ?? 200;
    this.child = spawn(process.execPath, [MAIN, 'serve', '--conf', configFile], {
      cwd: ROOT,
      env: { ...process.env, ...options.env, NOTIFY_SOCKET: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(this.child);
    this.child.stdout?.on('data', (b: Buffer) => this.onStdout(b.toString('utf8')));
    this.child.stderr?.on('data', (b: Buffer) => {
      const text = b.toString('utf8');
      this.stderrText = (this.stderrText + text).slice(-8192);
      this.scan(text);
    });
    this.exited = new Promise((resolveExit) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        if (!this.expectedExit)
          this.problems.push(
            `daemon exited on its own (code ${code}, signal ${signal}); stderr: ${this.stderrText.slice(-2000)}`,
          );
        for (const w of this.waiters) w.resolve({ msg: '<exit>' });
        this.waiters = [];
        resolveExit({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  get stderr(): string {
    return this.stderrText;
  }

  private scan(text: string): void {
    for (const s of this.options.secrets ?? []) {
      if (s !== '' && text.includes(s))
        this.problems.push(`a secret appeared in the daemon's output: ${text.slice(0, 300)}`);
    }
  }

  private onStdout(text: string): void {
    this.scan(text);
    this.partial += text;
    const parts = this.partial.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) {
      if (raw.trim() === '') continue;
      this.recent.push(raw);
      if (this.recent.length > this.keep) this.recent.shift();
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        line = { msg: raw, unparsed: true };
      }
      if (typeof line.level === 'number' && line.level >= 60)
        this.problems.push(`fatal log line: ${raw.slice(0, 500)}`);
      if (line.msg === 'listening' || line.msg === 'ready') this.seen.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(line)) return true;
        w.resolve(line);
        return false;
      });
    }
  }

  /** The first line (among `listening`/`ready`, or any future line) matching `pred`; null on exit. */
  waitFor(pred: (l: LogLine) => boolean): Promise<LogLine | null> {
    const seen = this.seen.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    if (!this.alive) return Promise.resolve(null);
    return new Promise((resolveLine) => {
      this.waiters.push({
        pred,
        resolve: (l) => resolveLine(l.msg === '<exit>' ? null : l),
      });
    });
  }

  /** The port of control `name` once it listens, or null if the daemon exits first. */
  async port(name: string): Promise<number | null> {
    const line = await this.waitFor((l) => l.msg === 'listening' && l.control === name);
    return line === null ? null : Number(line.port);
  }

  /** The Juggler URL and the HTTP port once both controls listen; throws if the daemon exits first. */
  async endpoints(): Promise<{ url: string; http: number }> {
    const port = await this.port('juggler');
    const http = await this.port('http');
    if (port === null || http === null) throw new Error(`daemon did not start: ${this.stderr}`);
    return { url: `ws://127.0.0.1:${port}/`, http };
  }

  /** Resolves true once the daemon logged `ready`, false if it exited first. */
  async ready(): Promise<boolean> {
    return (await this.waitFor((l) => l.msg === 'ready')) !== null;
  }

  /** SIGKILL now (synchronously: the kernel delivers it at once). */
  kill(): void {
    this.expectedExit = true;
    if (this.alive) this.child.kill('SIGKILL');
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null }> {
    this.expectedExit = true;
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }
}

// ---- HTTP ------------------------------------------------------------------------------------

export interface HttpResult {
  status: number;
  body: string;
}

export function httpGet(port: number, path: string, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolveReq, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolveReq({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** One sample of a Prometheus text: `name{labels}` → value (labels as written). */
export function metricValue(text: string, name: string, labels = ''): number | null {
  const key = labels === '' ? name : `${name}{${labels}}`;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${key} `)) return Number(line.slice(key.length + 1));
  }
  return null;
}

/** Sum of every sample of a metric, whatever its labels. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// ---- credentials -----------------------------------------------------------------------------

/** A user with a random password for the campaigns' Juggler controls. */
export function makeUser(rng: Rng): { username: string; password: string; hash: string } {
  const password = `pw-${rng.bytes(12).toString('hex')}`;
  return { username: 'campaign', password, hash: sha256(password) };
}
