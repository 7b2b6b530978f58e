/**
 * The Juggler control over TLS, in-process: our client with the CA, without it (a diagnosis that
 * says to give the CA), with verification off; the wrong scheme either way; mutual TLS without and
 * with a client certificate; the official `@hat-open/juggler` client over wss:// (through the
 * WebSocket class it is given, as a Node program uses it); and a reload that swaps the
 * certificate for new connections while an open one goes on.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import { ConnectFailedError, JugglerClient } from '../../src/client/index.js';
import { tempDir } from '../daemon/harness.js';
import { ADMIN, type Harness, startJuggler } from '../juggler/support/harness.js';
import { fingerprintOf, makeCert, makeTestPki, noOpenssl, type TestPki } from '../support/certs.js';

const skip = noOpenssl();

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` is shown. */
function servedFingerprint(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

async function failure(url: string, tls?: Parameters<typeof JugglerClient.connect>[1]) {
  const err = await JugglerClient.connect(url, { connectTimeout: 5000, ...tls }).then(
    async (c) => {
      await c.close();
      return null;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConnectFailedError, `expected a ConnectFailedError, got ${String(err)}`);
  return err;
}

describe('Juggler control over TLS', { skip }, () => {
  const { dir, cleanup } = tempDir('aimm-tls-client-');
  let pki: TestPki;
  let ca: Buffer;
  let h: Harness;
  let wss: string;
  before(async () => {
    pki = makeTestPki(dir);
    ca = readFileSync(pki.ca.cert);
    h = await startJuggler({ server: { pem_file: pki.server.pem } });
    wss = `wss://127.0.0.1:${h.port}/`;
  });
  after(async () => {
    await h?.close();
    cleanup();
  });

  test('the control says it is secure and logs a wss:// URL with the certificate', () => {
    assert.equal(h.control.secure, true);
    const line = h.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'listening');
    assert.equal(line.url, wss);
    assert.equal(line.tls, true);
    assert.equal(line.mutual_tls, false);
    assert.equal(line.certificate.fingerprint256, fingerprintOf(pki.server.cert));
  });

  test('our client with the CA: writes and reads', async () => {
    const c = await JugglerClient.connect(wss, { tls: { ca } });
    try {
      const meta = await c.put('t.Model', new Uint8Array([1, 2, 3]));
      assert.deepEqual([...(await c.get(meta.instanceId)).instance], [1, 2, 3]);
    } finally {
      await c.close();
    }
  });

  test('without the CA: not trusted, and the message says to give it', async () => {
    const err = await failure(wss);
    assert.equal(err.reason, 'tls');
    assert.match(err.message, /certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    assert.match(err.message, /--ca FILE/);
  });

  test('verification off works', async () => {
    const c = await JugglerClient.connect(wss, { tls: { rejectUnauthorized: false } });
    await c.list();
    await c.close();
  });

  test('a name the certificate does not list', async () => {
    const other = makeCert(dir, pki.ca, 'other-name', { san: 'DNS:models.example' });
    const h2 = await startJuggler({ server: { pem_file: other.pem } });
    try {
      const err = await failure(`wss://127.0.0.1:${h2.port}/`, { tls: { ca } });
      assert.equal(err.reason, 'tls');
      assert.match(
        err.message,
        /certificate is not for 127\.0\.0\.1:\d+ \(ERR_TLS_CERT_ALTNAME_INVALID/,
      );
    } finally {
      await h2.close();
    }
  });

  test('ws:// to the TLS control, wss:// to a plain one', async () => {
    let err = await failure(`ws://127.0.0.1:${h.port}/`);
    assert.equal(err.reason, 'closed');
    assert.match(err.message, /use wss:\/\//);
    const plain = await startJuggler();
    try {
      err = await failure(`wss://127.0.0.1:${plain.port}/`, { tls: { ca } });
      assert.equal(err.reason, 'tls');
      assert.match(err.message, /does not speak TLS .*use ws:\/\//);
    } finally {
      await plain.close();
    }
  });

  test('the official @hat-open/juggler client over wss://', async () => {
    const g = globalThis as Record<string, unknown>;
    const saved = { WebSocket: g.WebSocket, document: g.document, window: g.window };
    // The official client is written for browsers: it takes the global WebSocket and window. In
    // Node it gets ws's WebSocket, which is where the TLS options go.
    g.WebSocket = class extends WebSocket {
      constructor(address: string) {
        super(address, { ca });
      }
    };
    const noop = () => {};
    g.document ??= { addEventListener: noop, removeEventListener: noop, body: null };
    g.window ??= { addEventListener: noop, removeEventListener: noop };
    try {
      const { Connection } = (await import('@hat-open/juggler')) as unknown as {
        Connection: new (
          address: string,
        ) => EventTarget & { send(n: string, d: unknown): Promise<unknown>; close(): void };
      };
      const conn = new Connection(wss);
      await new Promise((resolve) => conn.addEventListener('open', resolve, { once: true }));
      const added = (await conn.send('add_instance', {
        model_type: 'official.Model',
        instance_b64: Buffer.from('hi').toString('base64'),
      })) as Record<string, unknown>;
      assert.equal(added.model_type, 'official.Model');
      const closed = new Promise((resolve) =>
        conn.addEventListener('close', resolve, { once: true }),
      );
      conn.close();
      await closed;
    } finally {
      Object.assign(g, saved);
    }
  });

  test('reload: a new certificate for new connections, an open connection goes on', async () => {
    const live = join(dir, 'live.pem');
    copyFileSync(pki.server.pem, live);
    const h2 = await startJuggler({ server: { pem_file: live }, users: [ADMIN] });
    const port = h2.port;
    try {
      const open = await JugglerClient.connect(`wss://127.0.0.1:${port}/`, {
        tls: { ca },
        username: 'admin',
        password: 'admin',
      });
      assert.equal(await servedFingerprint(port, ca), fingerprintOf(pki.server.cert));
      // Renewed in place: the same file now holds another certificate.
      const renewed = makeCert(dir, pki.ca, 'renewed', { cn: 'server' });
      try {
        writeFileSync(live, readFileSync(renewed.pem));
        const detail = await h2.control.reload?.();
        assert.equal(
          (detail?.certificate as { fingerprint256?: string } | undefined)?.fingerprint256,
          fingerprintOf(renewed.cert),
        );
        assert.equal(await servedFingerprint(port, ca), fingerprintOf(renewed.cert));
        // The connection opened before the reload still works.
        await open.put('t.Model', new Uint8Array([9]));
        // A broken file: the reload fails, the current certificate stays.
        writeFileSync(live, readFileSync(pki.server.cert));
        await assert.rejects(
          () => h2.control.reload?.() ?? Promise.resolve(),
          /has no private key/,
        );
        assert.equal(await servedFingerprint(port, ca), fingerprintOf(renewed.cert));
        await open.list();
      } finally {
        await open.close();
      }
    } finally {
      await h2.close();
    }
  });
});

describe('Juggler control with mutual TLS', { skip }, () => {
  const { dir, cleanup } = tempDir('aimm-mtls-client-');
  let pki: TestPki;
  let h: Harness;
  let wss: string;
  before(async () => {
    pki = makeTestPki(dir);
    h = await startJuggler({ server: { pem_file: pki.server.pem, ca_file: pki.ca.cert } });
    wss = `wss://127.0.0.1:${h.port}/`;
  });
  after(async () => {
    await h?.close();
    cleanup();
  });

  test('no client certificate: refused, and the message says one is required', async () => {
    const err = await failure(wss, { tls: { ca: readFileSync(pki.ca.cert) } });
    assert.equal(err.reason, 'tls');
    // The server's alert (certificate required) or, when the reset overtakes it, the drop.
    assert.match(err.message, /client certificate/);
    assert.match(err.message, /--cert FILE/);
  });

  test('a client certificate from another CA: refused', async () => {
    const otherDir = tempDir('aimm-mtls-other-');
    try {
      const other = makeTestPki(otherDir.dir);
      const err = await failure(wss, {
        tls: {
          ca: readFileSync(pki.ca.cert),
          cert: readFileSync(other.client.cert),
          key: readFileSync(other.client.key),
        },
      });
      assert.equal(err.reason, 'tls');
      assert.match(
        err.message,
        /refused this client's certificate|client certificate is missing or not signed/,
      );
    } finally {
      otherDir.cleanup();
    }
  });

  test('with the client certificate: works', async () => {
    const c = await JugglerClient.connect(wss, {
      tls: {
        ca: readFileSync(pki.ca.cert),
        cert: readFileSync(pki.client.cert),
        key: readFileSync(pki.client.key),
      },
    });
    await c.list();
    await c.close();
  });
});
