/**
 * Aiming a SIGKILL at a chosen moment of the daemon's life.
 *
 * - {@link killInSyscall}: a worker thread polls `/proc/PID/syscall` (Linux) every ~50 µs and
 *   kills the daemon the moment its main thread — where better-sqlite3 runs SQLite — is inside one
 *   of the given system calls: `pwrite64` (SQLite writing WAL frames or pages), `fsync` /
 *   `fdatasync` (a commit or checkpoint making them durable). The kill then lands inside a
 *   transaction's write or its commit. A worker, so that the campaign's own event loop (which hosts
 *   the Hat test peer) keeps running while it aims.
 * - {@link PeerHooks}: wraps the Hat test peer's message handler so that the daemon is killed when
 *   its N-th register request (or query) arrives: before the peer handles it (`dropped`: as if the
 *   daemon died before sending), right before the peer registers it (`landed`: Hat has the events,
 *   the daemon never sees the response), or right after the response was written to the socket
 *   (`response`: the daemon may or may not read it before it dies).
 */
import { Worker } from 'node:worker_threads';
import { MSG_QUERY_REQ, MSG_REGISTER_REQ } from '../../src/hat/eventer/codec.js';
import type { HatPeer } from '../peer/hat-peer.js';

/** x86-64 system call numbers. */
export const SYSCALLS = { write: 1, pwrite64: 18, fsync: 74, fdatasync: 75 } as const;
export const SYSCALL_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(SYSCALLS).map(([k, v]) => [v, k]),
);

export const canAimAtSyscalls = process.platform === 'linux' && process.arch === 'x64';

const POLLER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { pid, targets, deadlineMs } = workerData;
const nap = new Int32Array(new SharedArrayBuffer(4));
const buf = Buffer.alloc(256);
const deadline = Date.now() + deadlineMs;
let polls = 0;
let fd = -1;
try { fd = fs.openSync('/proc/' + pid + '/syscall', 'r'); } catch {}
let hit = null;
while (fd >= 0 && Date.now() < deadline) {
  polls++;
  let n;
  try { n = fs.readSync(fd, buf, 0, buf.length, 0); } catch { break; }
  const nr = parseInt(buf.toString('latin1', 0, Math.min(n, 8)), 10);
  if (targets.includes(nr)) {
    try { process.kill(pid, 'SIGKILL'); hit = nr; } catch {}
    break;
  }
  Atomics.wait(nap, 0, 0, 0.05);
}
if (fd >= 0) try { fs.closeSync(fd); } catch {}
parentPort.postMessage({ hit, polls });
`;

/**
 * Kills `pid` the moment its main thread is inside one of `targets` (syscall numbers); resolves
 * with the syscall hit, or null when none came within `deadlineMs` (nothing was killed then).
 */
export function killInSyscall(
  pid: number,
  targets: readonly number[],
  deadlineMs: number,
): Promise<{ hit: number | null; polls: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(POLLER, { eval: true, workerData: { pid, targets, deadlineMs } });
    worker.once('message', (m: { hit: number | null; polls: number }) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

export type PeerKillMoment = 'dropped' | 'landed' | 'response';

interface Armed {
  type: string;
  countdown: number;
  moment: PeerKillMoment;
  kill: () => void;
  fired: (info: { moment: PeerKillMoment }) => void;
}

type OnMessage = (pc: { info: { clientName: string } | null }, msg: { type: string }) => void;

/** Kills the daemon at its N-th register request or query on the test peer (see the file header). */
export class PeerHooks {
  private armed: Armed | null = null;
  /** Queries the daemon sent so far (to aim at recovery: how many a recovery takes). */
  queries = 0;

  constructor(
    peer: HatPeer,
    private readonly clientName: string,
  ) {
    const p = peer as unknown as { onMessage: OnMessage };
    const original = p.onMessage.bind(peer);
    p.onMessage = (pc, msg) => {
      if (msg.type === MSG_QUERY_REQ && pc.info?.clientName === this.clientName) this.queries++;
      const a = this.armed;
      if (a === null || msg.type !== a.type || pc.info?.clientName !== this.clientName)
        return original(pc, msg);
      if (--a.countdown > 0) return original(pc, msg);
      this.armed = null;
      if (a.moment !== 'response') a.kill();
      a.fired({ moment: a.moment });
      if (a.moment === 'dropped') return;
      original(pc, msg);
      if (a.moment === 'response') a.kill();
    };
  }

  /** Resolves once the kill happened (after `countdown` matching messages). */
  arm(
    what: 'register' | 'query',
    countdown: number,
    moment: PeerKillMoment,
    kill: () => void,
  ): Promise<{ moment: PeerKillMoment }> {
    return new Promise((fired) => {
      this.armed = {
        type: what === 'register' ? MSG_REGISTER_REQ : MSG_QUERY_REQ,
        countdown,
        moment,
        kill,
        fired,
      };
    });
  }

  disarm(): void {
    this.armed = null;
  }

  get isArmed(): boolean {
    return this.armed !== null;
  }
}
