/** Opening the TCP socket a chatter connection runs over, with typed errors and a timeout. */
import { connect as netConnect, type Socket } from 'node:net';
import { type Address, formatAddress } from '../../common/address.js';
import { ConnectError } from './errors.js';

export { type Address, formatAddress };

/** Size of a connection's one read buffer: what one socket read can return. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * A socket's reads into one buffer of its own, reused by every read (`net.connect`'s `onread`):
 * no fresh 64 KiB buffer per read for the collector, which a large frame would otherwise leave
 * behind as garbage as large as itself. A chunk handed on is valid only during the call; chunks
 * read before a reader attached are copied and replayed to it.
 */
export class TransientReads {
  private reader: ((chunk: Buffer) => void) | null = null;
  private early: Buffer[] = [];
  readonly callback = (n: number, buf: Buffer): boolean => {
    const chunk = buf.subarray(0, n);
    if (this.reader === null) this.early.push(Buffer.from(chunk));
    else this.reader(chunk);
    return true;
  };
  attach(reader: (chunk: Buffer) => void): void {
    this.reader = reader;
    const early = this.early;
    this.early = [];
    for (const chunk of early) reader(chunk);
  }
}

const transientReads = new WeakMap<Socket, TransientReads>();

/** The transient reads of a socket opened by {@link connectSocket} (undefined for others). */
export function transientReadsOf(socket: Socket): TransientReads | undefined {
  return transientReads.get(socket);
}

/**
 * Opens a TCP connection. Rejects with {@link ConnectError}: `connect_failed` (refused,
 * unreachable, bad address; `syscallCode` set) or `connect_timeout` after `timeoutMs`.
 */
export function connectSocket(address: Address, timeoutMs: number): Promise<Socket> {
  const where = formatAddress(address);
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      const reads = new TransientReads();
      socket = netConnect({
        host: address.host,
        port: address.port,
        onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: reads.callback },
      });
      transientReads.set(socket, reads);
    } catch (err) {
      reject(
        new ConnectError(
          'connect_failed',
          where,
          `cannot connect to ${where}: ${(err as Error).message}`,
          {
            cause: err,
          },
        ),
      );
      return;
    }
    const timer = setTimeout(() => {
      cleanup();
      socket.destroy();
      reject(
        new ConnectError(
          'connect_timeout',
          where,
          `connecting to ${where} timed out after ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => {
      cleanup();
      socket.destroy();
      const reason = err.code === 'ECONNREFUSED' ? 'connection refused' : err.message;
      reject(
        new ConnectError('connect_failed', where, `cannot connect to ${where}: ${reason}`, {
          cause: err,
          syscallCode: err.code,
        }),
      );
    };
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    function cleanup() {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('connect', onConnect);
    }
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}
