/**
 * A daemon in monitor mode against a hostile monitor (a raw TCP server here): an event server whose
 * data is not what hat-event publishes is skipped and counted; malformed frames, message types a
 * monitor never sends to a component, and MsgClose close the connection and the daemon reconnects;
 * it never crashes and never writes.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeFrame } from '../../src/hat/chatter/message.js';
import {
  encodeClose,
  encodeServerMsg,
  MSG_CLOSE,
  MSG_SERVER,
} from '../../src/hat/monitor/codec.js';
import type { ComponentInfo } from '../../src/hat/monitor/common.js';
import { MsgServer } from '../../src/hat/monitor/schema.js';
import { encode } from '../../src/hat/sbs/codec.js';
import { DaemonProcess, httpRequest, tempDir, until, writeJson } from './harness.js';

const T = { timeout: 60_000 };

function info(cid: number, group: string, data: string, token: number | null): ComponentInfo {
  return {
    cid,
    mid: 0,
    name: `c${cid}`,
    group,
    data,
    rank: 1,
    blessingReq: { token, timestamp: token === null ? null : 1.5 },
    blessingRes: { token, ready: true },
  };
}

/** A monitor that answers every connection with what `script` sends. */
class HostileMonitor {
  readonly sockets: Socket[] = [];
  private server: Server;
  script: (socket: Socket, n: number) => void = () => {};
  constructor() {
    this.server = createServer((s) => {
      this.sockets.push(s);
      s.on('error', () => {});
      this.script(s, this.sockets.length);
    });
  }
  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => {
        const a = this.server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : 0);
      }),
    );
  }
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

function frame(id: number, type: string, data: Uint8Array): Buffer {
  return encodeFrame({ id, first: id, owner: true, token: true, last: true, type, data });
}

describe('a daemon against a hostile monitor', () => {
  const { dir, cleanup } = tempDir('aimm-hostile-');
  const monitor = new HostileMonitor();
  let daemon: DaemonProcess;
  let http = 0;
  before(async () => {
    const port = await monitor.listen();
    const conf = writeJson(join(dir, 'conf.json'), {
      name: 'x',
      backend: { module: 'aimm-store/backends/event', model_prefix: ['aimm', 'model'] },
      hat: {
        monitor_component: { host: '127.0.0.1', port, group: 'aimm', event_server_group: 'event' },
        connect_timeout: 1,
      },
      control: [{ module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } }],
      log: { level: 'info' },
    });
    // Connection n: 1 invalid event-server data, 2 garbage bytes, 3 MsgSlave, 4 MsgClose,
    // 5 a MsgServer for a component id beyond 2^53; later ones stay quiet.
    // Each connection starts with a valid, empty state; then connection n gets: 1 invalid
    // event-server data (then the monitor closes it), 2 garbage bytes, 3 MsgSlave, 4 MsgClose,
    // 5 a MsgServer with a cid beyond 2^53; later ones stay quiet.
    monitor.script = (s, n) => {
      s.write(frame(1, MSG_SERVER, encodeServerMsg({ cid: 1, mid: 0, components: [] })));
      const bad = [
        info(1, 'event', '{"server_id": "one", "eventer_server": {"host": "h", "port": 1}}', 1),
      ];
      if (n === 1) {
        s.write(frame(2, MSG_SERVER, encodeServerMsg({ cid: 2, mid: 0, components: bad })));
        setTimeout(() => s.end(), 300);
      } else if (n === 2) s.write(Buffer.from([1, 5, 0xff, 0xff, 0xff, 0xff, 0xff]));
      else if (n === 3) s.write(frame(2, 'HatObserver.MsgSlave', Buffer.from([0])));
      else if (n === 4) s.write(frame(2, MSG_CLOSE, encodeClose()));
      else if (n === 5) {
        // A well-formed SBS integer the model refuses (a cid of 2^64).
        const big = encode(MsgServer, { cid: 2n ** 64n, mid: 0, components: [] });
        s.write(frame(2, MSG_SERVER, big));
      }
    };
    daemon = new DaemonProcess(['serve', '--conf', conf]);
    http = await daemon.port('http');
  });
  after(async () => {
    await daemon.stop('SIGKILL');
    await monitor.close();
    cleanup();
  });

  test(
    'skips and counts bad server data, closes and retries on bad messages, stays up',
    T,
    async () => {
      await until(
        'six monitor connections (every bad one closed and retried)',
        async () => monitor.sockets.length >= 6,
      );
      const metrics = (await httpRequest(http, '/metrics')).body.toString('utf8');
      assert.match(metrics, /aimm_store_monitor_invalid_server_data_total 1\b/);
      assert.match(metrics, /aimm_store_role\{role="active"\} 0/);
      const readyz = JSON.parse((await httpRequest(http, '/readyz')).body.toString('utf8')) as {
        ready: boolean;
        role: string;
        event_server: unknown;
      };
      assert.equal(readyz.ready, false, 'no event server: not ready');
      assert.equal(readyz.event_server, null);
      const warned = daemon.lines.filter((l) => l.msg === 'monitor: no event server');
      assert.ok(
        warned.some((l) => l.reason === 'invalid_data'),
        'the invalid data is logged with its reason',
      );
      assert.ok(
        daemon.lines.some((l) => l.msg === 'monitor: connection lost; reconnecting'),
        'bad messages end the connection; the daemon reconnects',
      );
      // Still alive and answering.
      assert.equal((await httpRequest(http, '/healthz')).status, 200);
      // Every connection opened with the daemon's MsgClient.
      for (const s of monitor.sockets) assert.ok(s.bytesRead > 0);
    },
  );
});
