/**
 * Servers that are not a Juggler control, for the client's connection diagnosis: a Hat chatter
 * server read as the reference reads, and raw TCP servers that stay silent, close at once or
 * answer with bytes that are not HTTP.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { decodeBody, encodeFrame, PING, PONG } from '../../src/hat/chatter/message.js';

/** A listening test server on 127.0.0.1. */
export interface TestServer {
  port: number;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

/** A TCP server that does `onSocket` with every connection. */
export function rawServer(onSocket: (socket: Socket) => void): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address !== null ? address.port : 0,
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * A Hat chatter server as the reference reads: `[m][m bytes length][body]` with no size limit, so
 * an HTTP request (`G` = 71 length bytes) leaves it waiting silently; a ping gets a pong.
 */
export function startChatterServer(): Promise<TestServer> {
  return rawServer((socket: Socket) => {
    let buf = Buffer.alloc(0);
    let nextId = 1;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const m = buf[0];
        if (m === undefined || buf.length < 1 + m) return;
        let length = 0n;
        for (let i = 1; i <= m; i++) length = length * 256n + BigInt(buf[i] as number);
        if (BigInt(buf.length) < BigInt(1 + m) + length) return; // waits, as readexactly does
        const body = buf.subarray(1 + m, 1 + m + Number(length));
        buf = buf.subarray(1 + m + Number(length));
        const msg = decodeBody(body);
        if (msg.type === PING)
          socket.write(
            encodeFrame({
              id: nextId++,
              first: msg.first,
              owner: false,
              token: true,
              last: true,
              type: PONG,
              data: new Uint8Array(0),
            }),
          );
      }
    });
  });
}
