/**
 * `JugglerClient.connect` to an address that is not a Juggler control fails with a
 * ConnectFailedError saying what the address seems to be: nothing listening, an HTTP server, a Hat
 * chatter port (found by a chatter ping, not by waiting out the handshake timeout), a server that
 * closes, one that answers with bytes that are not HTTP, one that stays silent.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, test } from 'node:test';
import { ConnectFailedError, type ConnectFailure, JugglerClient } from '../../src/client/index.js';
import { startJuggler } from '../juggler/support/harness.js';
import { rawServer, startChatterServer, type TestServer } from './servers.js';

async function failure(
  url: string,
  connectTimeout = 10_000,
): Promise<{ reason: ConnectFailure; message: string }> {
  try {
    const c = await JugglerClient.connect(url, { connectTimeout });
    await c.close();
  } catch (err) {
    assert.ok(err instanceof ConnectFailedError, String(err));
    assert.ok(err.message.startsWith(`cannot connect to ${url}: `), err.message);
    return { reason: err.reason, message: err.message };
  }
  throw new Error(`connected to ${url}`);
}

async function withServer<T>(start: Promise<TestServer>, fn: (s: TestServer) => Promise<T>) {
  const s = await start;
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

describe('connect: what the address seems to be', () => {
  test('nothing listening: refused', async () => {
    const h = await startJuggler({});
    const url = h.url;
    await h.close();
    const f = await failure(url);
    assert.equal(f.reason, 'refused');
    assert.match(f.message, /nothing listens on 127\.0\.0\.1:\d+/);
  });

  test('an HTTP server: its status, and that the Juggler control was expected', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const f = await failure(`ws://127.0.0.1:${port}/`);
      assert.equal(f.reason, 'http');
      assert.match(
        f.message,
        /answered with HTTP 404 Not Found instead of switching to a WebSocket/,
      );
      assert.match(f.message, /expected aimm-store's Juggler control/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a Hat chatter port: recognised by its pong', async () => {
    await withServer(startChatterServer(), async (s) => {
      const f = await failure(`ws://127.0.0.1:${s.port}/`);
      assert.equal(f.reason, 'hat_chatter');
      assert.match(f.message, /speaks Hat's chatter protocol/);
    });
  });

  test('a server that closes at once', async () => {
    await withServer(
      rawServer((socket) => socket.destroy()),
      async (s) => {
        const f = await failure(`ws://127.0.0.1:${s.port}/`);
        assert.equal(f.reason, 'closed');
        assert.match(f.message, /closed the connection without answering the WebSocket handshake/);
      },
    );
  });

  test('a server that answers with something that is not HTTP', async () => {
    await withServer(
      rawServer((socket) => socket.write('SSH-2.0-OpenSSH_9.2\r\n')),
      async (s) => {
        const f = await failure(`ws://127.0.0.1:${s.port}/`);
        assert.equal(f.reason, 'not_http');
        assert.match(f.message, /answered with something that is not HTTP/);
      },
    );
  });

  test('a silent server: accepted the connection, no answer within the timeout', async () => {
    await withServer(
      rawServer(() => {}),
      async (s) => {
        const f = await failure(`ws://127.0.0.1:${s.port}/`, 1500);
        assert.equal(f.reason, 'no_answer');
        assert.match(
          f.message,
          /accepted the connection but did not answer the WebSocket handshake within 1500 ms/,
        );
      },
    );
  });
});
