/**
 * Security checks end to end, beside the ones the controls and the daemon test themselves
 * (docs/reliability.md lists them all):
 *
 * - no secret — a clear password, its SHA-256 hex in either case, the Hat client token — in the
 *   daemon's output at log level `trace` or in its metrics, through successful, failed and
 *   malformed logins and a Hat connection that needs the token;
 * - one client flooding the daemon with messages over `max_message_size` and with more requests
 *   than `max_pending_requests` cannot make it buffer them (the excess requests wait unread in
 *   TCP: backpressure): its memory stays bounded and another client is served all along.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { RequestFailedError } from '../../src/client/connection.js';
import { JugglerClient } from '../../src/client/index.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import {
  Daemon,
  httpGet,
  metricSum,
  metricValue,
  sha256,
  sleep,
  tempDir,
  until,
  writeConfig,
} from './support.js';

const T = { timeout: 90_000 };
const PASSWORD = 'correct horse battery staple 71';
const HASH = sha256(PASSWORD);
const TOKEN = 'hat-client-token-e91d77';
const { dir, cleanup } = tempDir('aimm-security-');

let peer: HatPeer;
before(async () => {
  peer = await startHatPeer({ serverToken: TOKEN, flushDelayMs: 5 });
});
after(async () => {
  await peer.close();
  cleanup();
});

function secretsIn(text: string): string[] {
  return [PASSWORD, HASH, HASH.toUpperCase(), TOKEN].filter((s) => text.includes(s));
}

describe('security, end to end', () => {
  test('no secret in the logs at trace level or in the metrics', T, async () => {
    const config = writeConfig(join(dir, 'secrets.json'), {
      name: 'secrets',
      backend: {
        module: 'aimm-store/backends/event',
        model_prefix: ['aimm', 'model'],
        snapshot: { path: join(dir, 'secrets-snapshot.db') },
      },
      hat: { eventer_server: { host: peer.host, port: peer.port }, client_token: TOKEN },
      control: [
        {
          module: 'aimm-store/controls/juggler',
          server: { host: '127.0.0.1', port: 0 },
          users: [
            { username: 'admin', password: HASH },
            { username: 'other', password: sha256('x') },
          ],
        },
        { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
      ],
      log: { level: 'trace' },
    });
    const daemon = new Daemon(config);
    try {
      const { url, http } = await daemon.endpoints();
      // The token reached Hat: the peer accepted the connection.
      assert.ok(peer.clients().some((c) => c.clientToken === TOKEN));
      const ok = await JugglerClient.connect(url, { username: 'admin', password: PASSWORD });
      await ok.put('t', Buffer.from('x'));
      await ok.close();
      await assert.rejects(
        JugglerClient.connect(url, { username: 'other', password: PASSWORD }),
        /login as 'other' failed/,
      );
      // Malformed logins carrying the secrets in odd places.
      const raw = await JugglerClient.connect(url, { pingDelay: null });
      for (const data of [
        { username: HASH, password: 7 },
        { user: 'admin', password: HASH },
        { username: 'admin', password: HASH.toUpperCase(), extra: TOKEN },
        [PASSWORD, HASH],
      ]) {
        await raw.request('login', data).catch((err: unknown) => {
          assert.ok(err instanceof RequestFailedError);
        });
      }
      await raw.close().catch(() => {});
      const metrics = (await httpGet(http, '/metrics')).body;
      assert.deepEqual(secretsIn(metrics), [], 'secrets in /metrics');
      assert.ok(
        (metricValue(metrics, 'aimm_store_juggler_logins_total', 'result="failure"') ?? 0) >= 1,
      );
    } finally {
      await daemon.stop();
    }
    const output = `${daemon.recent.join('\n')}\n${daemon.stderr}`;
    assert.ok(daemon.recent.length > 10, 'trace output was produced');
    assert.deepEqual(secretsIn(output), [], 'secrets in the daemon output');
    assert.deepEqual(daemon.problems, []);
  });

  test('a flood of oversize messages and requests: bounded memory, others served', T, async (t) => {
    const MAX = 1024 * 1024;
    const config = writeConfig(join(dir, 'flood.json'), {
      name: 'flood',
      backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'flood.db') },
      control: [
        {
          module: 'aimm-store/controls/juggler',
          server: { host: '127.0.0.1', port: 0 },
          max_message_size: MAX,
          max_pending_requests: 8,
        },
        { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
      ],
      log: { level: 'info' },
    });
    const daemon = new Daemon(config);
    try {
      const { url, http } = await daemon.endpoints();
      const rss = async () =>
        metricValue(
          (await httpGet(http, '/metrics')).body,
          'aimm_store_process_resident_memory_bytes',
        ) ?? 0;
      const other = await JugglerClient.connect(url, { pingDelay: null });
      const first = await other.put('t', Buffer.from('first'));
      const baseline = await rss();

      // The other client keeps working during the flood.
      let served = 0;
      let running = true;
      const otherLoop = (async () => {
        while (running) {
          const m = await other.put('t', Buffer.from(`x${served}`));
          const got = await other.get(m.instanceId);
          assert.equal(Buffer.from(got.instance).toString(), `x${served}`);
          served++;
        }
      })();

      // 0.7 segments: 320 messages of 2 MiB each (640 MiB), every one over the limit.
      const flood = new WebSocket(url, { perMessageDeflate: false });
      const answers: string[] = [];
      flood.on('message', (d) => {
        const t = d.toString();
        if (t.startsWith('0{"type": "response"')) answers.push(t);
      });
      await new Promise((r) => flood.once('open', r));
      const seg = 'A'.repeat(64 * 1024);
      let peak = baseline;
      for (let i = 0; i < 320; i++) {
        flood.send(
          `1{"type": "request", "id": ${i + 1}, "name": "add_instance", "data": {"model_type": "t", "instance_b64": "`,
        );
        for (let k = 0; k < 32; k++) flood.send(`1${seg}`);
        flood.send('0"}}');
        while (flood.bufferedAmount > 8 * 1024 * 1024) await sleep(5);
        if (i % 20 === 19) peak = Math.max(peak, await rss());
      }
      // Requests beyond max_pending_requests, all at once: not refused; the connection is read
      // no faster than its window of 8 empties (backpressure), so they wait in TCP, not here.
      // (A cheap read each: list_instances would grow with the other client's models.)
      for (let i = 0; i < 2000; i++)
        flood.send(
          `0{"type": "request", "id": ${1000 + i}, "name": "get_instance", "data": {"instance_id": ${first.instanceId}, "meta_only": true}}`,
        );
      await until(() => answers.length >= 2320, 'every flood message answered', 60_000, 20);
      peak = Math.max(peak, await rss());
      running = false;
      await otherLoop;
      const metrics = (await httpGet(http, '/metrics')).body;
      assert.equal(answers.filter((a) => a.includes('over the limit')).length, 320);
      const listed = answers.filter((a) => /"id": (1\d{3}|2\d{3}),/.test(a));
      assert.equal(listed.length, 2000);
      assert.ok(listed.every((a) => a.endsWith('"success": true}')));
      assert.equal(metricValue(metrics, 'aimm_store_juggler_requests_in_flight'), 0);
      assert.ok(metricSum(metrics, 'aimm_store_juggler_rejected_total') >= 320);
      assert.ok(served > 0, 'the other client was served');
      // 640 MiB went in; memory grows by garbage not yet collected, far from what went in.
      const growth = peak - baseline;
      t.diagnostic(
        `rss ${Math.round(baseline / 1048576)} MiB → peak ${Math.round(peak / 1048576)} MiB; other client served ${served} times`,
      );
      assert.ok(growth < 256 * 1024 * 1024, `memory grew by ${Math.round(growth / 1048576)} MiB`);
      flood.close();
      await other.close();
      assert.ok(daemon.alive);
    } finally {
      await daemon.stop();
    }
    assert.deepEqual(daemon.problems, []);
  });
});
