/** Opening the TCP socket a chatter connection runs over, with typed errors and a timeout. */
import { connect as netConnect, type Socket } from 'node:net';
import { type Address, formatAddress } from '../../common/address.js';
import { ConnectError } from './errors.js';

export { type Address, formatAddress };

/**
 * Opens a TCP connection. Rejects with {@link ConnectError}: `connect_failed` (refused,
 * unreachable, bad address; `syscallCode` set) or `connect_timeout` after `timeoutMs`.
 */
export function connectSocket(address: Address, timeoutMs: number): Promise<Socket> {
  const where = formatAddress(address);
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      socket = netConnect({ host: address.host, port: address.port });
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
