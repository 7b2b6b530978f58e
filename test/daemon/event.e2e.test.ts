/**
 * `serve` with the event backend against the Hat test peer (in this process): the daemon's `hat`
 * section reaches the connector (addresses, client name, token from a file), readiness follows
 * recovery and the connection, and the token never reaches a log.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import {
  DaemonProcess,
  httpRequest,
  NotifyReceiver,
  tempDir,
  until,
  writeJson,
} from './harness.js';
import { Juggler06 } from './juggler06.js';

const TOKEN = 'hat-secret-token-51d2';
const T = { timeout: 60_000 };
const { dir, cleanup } = tempDir('aimm-event-');

let peer: HatPeer;
before(async () => {
  peer = await startHatPeer({ serverToken: TOKEN, flushDelayMs: 10 });
  // A model AIMM wrote before we started: AIMM's exact event shape.
  peer.register([
    {
      type: ['aimm', 'model', '3'],
      sourceTimestamp: null,
      payload: { kind: 'json', text: '{"type": "text.Model", "instance": "aGVsbG8="}' },
    },
  ]);
});
after(async () => {
  await peer.close();
  cleanup();
});

let n = 0;
function config(hat: Record<string, unknown>): string {
  const file = join(dir, `event-${++n}.json`);
  writeJson(file, {
    name: 'evt',
    backend: {
      module: 'aimm-store/backends/event',
      model_prefix: ['aimm', 'model'],
      snapshot: { path: join(dir, `snapshot-${n}.db`) },
      reconnect: { min_delay_ms: 20, max_delay_ms: 100 },
    },
    hat: { eventer_server: { host: peer.host, port: peer.port }, ...hat },
    control: [
      { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
    ],
    log: { level: 'debug' },
  });
  chmodSync(file, 0o600);
  return file;
}

describe('serve with the event backend', () => {
  test('token from a file; recovery, writes as AIMM events, readiness follows Hat', T, async () => {
    const tokenFile = join(dir, 'hat-token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const receiver = new NotifyReceiver(dir);
    const daemon = new DaemonProcess(
      ['serve', '--conf', config({ client_token_file: tokenFile })],
      {
        env: { NOTIFY_SOCKET: receiver.path },
      },
    );
    try {
      const http = await daemon.port('http');
      const juggler = await daemon.port('juggler');
      await receiver.waitFor((m) => m.split('\n').includes('READY=1'));
      const clients = peer.clients();
      assert.ok(
        clients.some((c) => c.clientName === 'aimm-store/evt' && c.clientToken === TOKEN),
        JSON.stringify(clients.map((c) => c.clientName)),
      );
      const ready = await httpRequest(http, '/readyz');
      assert.equal(ready.status, 200, ready.body.toString());
      assert.equal(JSON.parse(ready.body.toString()).connected, true);
      assert.equal((await httpRequest(http, '/models/3')).body.toString(), 'hello');

      const client = await Juggler06.connect(juggler);
      const added = await client.request('add_instance', {
        model_type: 'text.Model',
        instance_b64: Buffer.from('world').toString('base64'),
      });
      client.close();
      assert.equal(added.success, true, JSON.stringify(added));
      const id = (added.data as { instance_id: number }).instance_id;
      assert.equal(id, 4, 'max known id + 1');
      const event = peer.events.find((e) => e.type.join('/') === `aimm/model/${id}`);
      assert.ok(event !== undefined, 'the write is an event under the prefix');

      const metrics = (await httpRequest(http, '/metrics')).body.toString();
      assert.match(metrics, /^aimm_store_event_connected 1$/m);
      assert.match(metrics, /^aimm_store_backend_connected 1$/m);
      assert.ok(!metrics.includes(TOKEN), 'token in metrics');

      // Hat goes away: not ready; Hat comes back: ready again.
      await peer.stop();
      await until('not ready', async () => (await httpRequest(http, '/readyz')).status === 503);
      await peer.start();
      await until('ready again', async () => (await httpRequest(http, '/readyz')).status === 200);
    } finally {
      receiver.close();
      await daemon.stop();
    }
    assert.equal((await daemon.exited).code, 0);
    assert.ok(!daemon.stdout.includes(TOKEN) && !daemon.stderr.includes(TOKEN), 'token logged');
  });

  test('SIGTERM during a write burst: every acknowledged write is an event in Hat', T, async () => {
    const daemon = new DaemonProcess(['serve', '--conf', config({ client_token: TOKEN })]);
    const port = await daemon.port('juggler');
    await daemon.waitForMsg('ready');
    const acked = new Map<number, string>();
    let signalled = false;
    const writers = await Promise.all(Array.from({ length: 4 }, () => Juggler06.connect(port)));
    await Promise.all(
      writers.flatMap((client) =>
        Array.from({ length: 4 }, async () => {
          for (;;) {
            const b64 = randomBytes(256 + Math.floor(Math.random() * 4096)).toString('base64');
            let res: Awaited<ReturnType<Juggler06['request']>>;
            try {
              res = await client.request('add_instance', {
                model_type: 'burst.Model',
                instance_b64: b64,
              });
            } catch {
              return;
            }
            if (res.success) acked.set((res.data as { instance_id: number }).instance_id, b64);
            if (acked.size >= 200 && !signalled) {
              signalled = true;
              daemon.kill('SIGTERM');
            }
          }
        }),
      ),
    );
    assert.equal((await daemon.exited).code, 0, daemon.stderr);
    assert.ok(acked.size >= 200);
    const stored = new Map<string, string>();
    for (const e of peer.events) {
      if (e.payload?.kind === 'json') stored.set(e.type.join('/'), e.payload.text);
    }
    for (const [id, b64] of acked) {
      const text = stored.get(`aimm/model/${id}`);
      assert.ok(text !== undefined, `model ${id} has no event`);
      assert.equal(JSON.parse(text).instance, b64, `model ${id}`);
    }
  });

  test('a wrong token: never ready, the refusal logged without the token', T, async () => {
    const receiver = new NotifyReceiver(dir);
    const daemon = new DaemonProcess(['serve', '--conf', config({ client_token: 'wrong-7c1e' })], {
      env: { NOTIFY_SOCKET: receiver.path },
    });
    try {
      const http = await daemon.port('http');
      await daemon.waitFor((l) => /invalid client token/.test(JSON.stringify(l)));
      const res = await httpRequest(http, '/readyz');
      assert.equal(res.status, 503);
      assert.ok(!receiver.fields().includes('READY=1'));
    } finally {
      receiver.close();
      await daemon.stop();
    }
    assert.equal((await daemon.exited).code, 0);
    assert.ok(!daemon.stdout.includes('wrong-7c1e'), 'token logged');
  });
});
