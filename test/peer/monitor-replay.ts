/**
 * Support for the monitor double's tests: the recorded sessions of `monitor-vectors/`, a raw
 * frame-level client, a small chatter component client, and the replay of a recorded session's
 * client frames into a {@link MonitorPeer}.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connectSocket } from '../../src/hat/chatter/connect.js';
import { Connection } from '../../src/hat/chatter/connection.js';
import { decodeBody } from '../../src/hat/chatter/message.js';
import { pythonJsonDumps } from '../../src/hat/eventer/json.js';
import {
  decodeClientMsg,
  decodeMonitorMessage,
  encodeClientMsg,
  MSG_CLIENT,
  MSG_CLOSE,
} from '../../src/hat/monitor/codec.js';
import type { ClientMsg, ComponentInfo, ServerMsg } from '../../src/hat/monitor/common.js';
import { ownInfo } from '../../src/hat/monitor/common.js';
import {
  loadMonitorConversations,
  type MonitorConversation,
  type MonitorStep as Step,
  unhex,
} from '../hat/monitor-vectors.js';
import type { BlessingAlgorithm, MonitorPeer, MonitorPeerOptions } from './monitor-peer.js';

export type { Step };

interface MonitorConfig {
  default_algorithm: BlessingAlgorithm;
  group_algorithms: Record<string, BlessingAlgorithm>;
  server: { default_rank: number };
}

export interface Recording extends MonitorConversation {
  /** The monitor's configuration; in c* under `monitor` beside the event servers'. */
  server: { config?: MonitorConfig; monitor?: { config: MonitorConfig } };
}

export function loadRecordings(): Map<string, Recording> {
  return loadMonitorConversations<Recording>();
}

export function peerOptions(rec: Recording): MonitorPeerOptions {
  const c = rec.server.config ?? rec.server.monitor?.config;
  if (c === undefined) throw new Error('the recording has no monitor configuration');
  return {
    defaultAlgorithm: c.default_algorithm,
    groupAlgorithms: c.group_algorithms,
    defaultRank: c.server.default_rank,
  };
}

/** Polls `cond` until it holds; rejects after `timeoutMs` naming `what`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A TCP client that writes raw bytes and collects whole frames (length prefix included). */
export class RawClient {
  readonly frames: Buffer[] = [];
  ended = false;
  private buf = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const m = this.buf[0];
        if (m === undefined || this.buf.length < 1 + m) break;
        let k = 0;
        for (let i = 1; i <= m; i++) k = k * 256 + (this.buf[i] as number);
        if (this.buf.length < 1 + m + k) break;
        this.frames.push(Buffer.from(this.buf.subarray(0, 1 + m + k)));
        this.buf = this.buf.subarray(1 + m + k);
      }
    });
    const end = () => {
      this.ended = true;
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((res, rej) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => {
        s.off('error', rej);
        res(new RawClient(s));
      });
      s.once('error', rej);
    });
  }

  /** The chatter messages received so far. */
  messages() {
    return this.frames.map((f) => decodeBody(f.subarray(1 + (f[0] as number))));
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.write(bytes);
  }
}

/** A component over chatter: sends MsgClient, keeps every MsgServer, counts MsgClose. */
export class Comp {
  readonly msgs: ServerMsg[] = [];
  closes = 0;
  private constructor(readonly conn: Connection) {}

  static async connect(peer: MonitorPeer, opts: { closeOnMsgClose?: boolean } = {}) {
    const socket = await connectSocket({ host: peer.host, port: peer.port }, 5000);
    let comp: Comp | undefined;
    const conn = new Connection(socket, {
      onMessage: (msg) => {
        const m = decodeMonitorMessage(msg.type, msg.data);
        if (m.kind === 'server') comp?.msgs.push(m.msg);
        else if (comp !== undefined) {
          comp.closes++;
          if (opts.closeOnMsgClose) void conn.close();
        }
      },
    });
    comp = new Comp(conn);
    return comp;
  }

  send(fields: Partial<ClientMsg> & { token?: number | null; ready?: boolean }): void {
    const { token = null, ready = false, ...rest } = fields;
    const msg: ClientMsg = {
      name: 'c',
      group: 'g',
      data: 'null',
      blessingRes: { token, ready },
      ...rest,
    };
    this.conn.send(MSG_CLIENT, encodeClientMsg(msg));
  }

  get last(): ServerMsg | undefined {
    return this.msgs.at(-1);
  }

  own(): ComponentInfo | undefined {
    const m = this.last;
    return m === undefined ? undefined : ownInfo(m);
  }

  /** Waits until the latest MsgServer satisfies `pred`. */
  async until(pred: (m: ServerMsg) => boolean, what: string): Promise<ServerMsg> {
    await until(() => this.last !== undefined && pred(this.last), what);
    return this.last as ServerMsg;
  }

  close(): Promise<unknown> {
    return this.conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// replaying a recording's client side into the double

type Input =
  | { t: number; kind: 'accept' | 'eof'; conn: string }
  | { t: number; kind: 'frame'; conn: string; bytes: Buffer }
  | { t: number; kind: 'stop' };

/** A c2s frame the monitor drops the client for: another type, or data that is not JSON. */
function isInvalid(step: Step): boolean {
  const d = step.decoded;
  if (d === undefined || d.data.type !== MSG_CLIENT) return true;
  try {
    pythonJsonDumps(decodeClientMsg(unhex(d.data.data_hex)).data);
    return false;
  } catch {
    return true;
  }
}

/** The monitor connections of a recording (for c*, not the eventer ones). */
export function monitorConns(rec: Recording): string[] {
  return Object.entries(rec.connections)
    .filter(([, c]) => c.server.startsWith('monitor'))
    .map(([k]) => k);
}

/**
 * The recorded inputs in time order: accepts, c2s frames and EOFs of the monitor connections,
 * and a server stop where the recording shows a MsgClose not caused by invalid input (SIGTERM).
 */
function inputsOf(rec: Recording, conns: string[]): Input[] {
  const inputs: Input[] = conns.map((conn) => ({
    t: (rec.connections[conn] as { accepted_t_ms: number }).accepted_t_ms,
    kind: 'accept',
    conn,
  }));
  const lastC2s = new Map<string, Step>();
  for (const s of rec.steps) {
    if (!conns.includes(s.conn)) continue;
    if (s.dir === 'c2s') {
      if (s.eof) inputs.push({ t: s.t_ms, kind: 'eof', conn: s.conn });
      else {
        inputs.push({
          t: s.t_ms,
          kind: 'frame',
          conn: s.conn,
          bytes: unhex(s.frame_hex),
        });
        lastC2s.set(s.conn, s);
      }
    } else if (s.decoded?.data.type === MSG_CLOSE) {
      const last = lastC2s.get(s.conn);
      if (last === undefined || !isInvalid(last)) inputs.push({ t: s.t_ms - 0.001, kind: 'stop' });
    }
  }
  return inputs.sort((a, b) => a.t - b.t); // stable: an accept stays before frames at its time
}

export interface Replayed {
  /** Per connection: the frames the double sent and whether it closed the connection. */
  got: Map<string, { frames: Buffer[]; ended: boolean }>;
}

/**
 * Replays the recorded client side of `conns` into `peer`: connections in the recorded accept
 * order, frames in recorded time order. Before each input, every frame (and close) the recording
 * shows the server sending before that moment must have arrived; after it, the double must have
 * handled it. Finally waits for the remaining recorded frames.
 */
export async function replay(
  rec: Recording,
  conns: string[],
  peer: MonitorPeer,
): Promise<Replayed> {
  const clients = new Map<string, RawClient>();
  const expected = (conn: string, t: number) => {
    const s2c = rec.steps.filter((s) => s.conn === conn && s.dir === 's2c' && s.t_ms < t);
    return { frames: s2c.filter((s) => !s.eof).length, eof: s2c.some((s) => s.eof) };
  };
  const settle = async (t: number) => {
    for (const [conn, c] of clients) {
      const e = expected(conn, t);
      await until(
        () => c.frames.length >= e.frames && (!e.eof || c.ended),
        `${conn}: ${e.frames} frames${e.eof ? ' and a close' : ''} (got ${c.frames.length})`,
      );
    }
  };
  let stopping: Promise<void> | null = null;
  try {
    for (const input of inputsOf(rec, conns)) {
      await settle(input.t);
      const before = peer.inputCount();
      if (input.kind === 'stop') {
        stopping = peer.stop();
        continue;
      }
      if (input.kind === 'accept') {
        if (stopping !== null) {
          await stopping;
          stopping = null;
          await peer.start();
        }
        clients.set(input.conn, await RawClient.connect(peer.port));
      } else {
        const c = clients.get(input.conn) as RawClient;
        if (input.kind === 'frame') c.write(input.bytes);
        else c.socket.end();
      }
      await until(() => peer.inputCount() > before, `the double to handle ${input.kind}`);
    }
    await settle(Number.POSITIVE_INFINITY);
    return {
      got: new Map(
        [...clients].map(([conn, c]) => [conn, { frames: [...c.frames], ended: c.ended }]),
      ),
    };
  } finally {
    for (const c of clients.values()) c.socket.destroy();
    if (stopping !== null) await stopping;
  }
}
