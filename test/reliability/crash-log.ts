/**
 * The crash writer's append-only log: one JSON line per fact, written synchronously (`writeSync`
 * on an `O_APPEND` descriptor) *before* the writer counts it, so the file holds every
 * acknowledgement the writer ever received even if the writer itself dies.
 *
 * - `a` attempt, written before the request is sent: `s` sequence number (unique, increasing),
 *   `op`, `id` (update/delete), `er` expected revision (every update and delete is a
 *   compare-and-set on the revision the writer knows), `h` sha256 of the bytes, `n` their size,
 *   `mt` the model type;
 * - `k` acknowledgement: `s`, `id`, `r` the revision the daemon reported, `h` the sha256 and `mt`
 *   the model type it reported (creates and updates), `ack` its acknowledgement level;
 * - `f` an error response: `s`, `e` its text.
 *
 * An attempt with neither `k` nor `f` is *uncertain*: its connection died with the daemon.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

export type WriteOp = 'create' | 'update' | 'delete';

export type LogEntry =
  | {
      t: 'a';
      s: number;
      op: WriteOp;
      id?: number;
      er?: number;
      h?: string;
      n?: number;
      mt?: string;
    }
  | { t: 'k'; s: number; id: number; r: number; h?: string; mt?: string; ack?: string }
  | { t: 'f'; s: number; e: string };

export class AppendLog {
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  append(entry: LogEntry): void {
    writeSync(this.fd, `${JSON.stringify(entry)}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Reads the log from `offset` (bytes); a torn last line (a writer killed mid-write) is left for later. */
export function readLog(path: string, offset: number): { entries: LogEntry[]; offset: number } {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch {
    return { entries: [], offset };
  }
  const end = buf.lastIndexOf(0x0a) + 1;
  if (end <= offset) return { entries: [], offset };
  const text = buf.subarray(offset, end).toString('utf8');
  const entries: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    entries.push(JSON.parse(line) as LogEntry);
  }
  return { entries, offset: end };
}

// ---- the writer process's IPC messages -------------------------------------------------------

/** Campaign → writer. */
export type WriterCommand =
  | {
      cmd: 'run';
      url: string;
      username: string | null;
      password: string | null;
      /** Juggler connections, and writes in flight on each. */
      clients: number;
      perClient: number;
      /** The number of live models the writer steers towards. */
      targetModels: number;
      seed: number;
      /** Live ids and their confirmed revisions (CrashChecker.baseline()). */
      live: [number, number][];
    }
  | { cmd: 'stop' }
  | { cmd: 'exit' };

/** Writer → campaign. */
export type WriterEvent =
  | { ev: 'ready' }
  /** The first acknowledgement of a run arrived: writes are flowing. */
  | { ev: 'writing' }
  | { ev: 'progress'; attempts: number; acked: number }
  | {
      ev: 'idle';
      attempts: number;
      acked: number;
      failed: number;
      /** Why the run ended: 'stopped', or the error that closed the connections. */
      reason: string;
    };
