/**
 * TLS benchmark: `node dist/bench/tls.js [--quick]` (after `npm run build`; needs `openssl`).
 *
 * The HTTP control in-process (over an in-memory backend) twice, plain and with `pem_file`, and
 * one client request at a time on a NEW connection each (no keep-alive, no TLS session reuse: a
 * full handshake per request, the worst case a client that reconnects for every call makes):
 * - `GET /readyz` (a few bytes: the handshake is nearly all of it), with an EC P-256 and an
 *   RSA 2048 server certificate;
 * - `GET /models/{id}` of 1 MiB (the handshake plus encrypting the bytes);
 * - and, to separate the two costs, the 1 MiB GET on one kept-alive connection (encryption only).
 * Plain and TLS alternate in rounds in the same process; for each, the median wall-clock and CPU
 * time per request of both and the median (and range) of the per-round ratios TLS / plain. The CPU
 * time (client and server share the process) is the steadier figure on a busy machine.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent as HttpAgent, get as httpGet, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
import { pino } from 'pino';
import { MetricsRegistry } from '../src/common/metrics.js';
import { create as createHttpControl } from '../src/controls/http.js';
import type { Control } from '../src/controls/types.js';
import { makeCa, makeCert, noOpenssl } from '../test/support/certs.js';
import { MemoryBackend } from '../test/support/memory-backend.js';
import { median } from './stats.js';

const quick = process.argv.includes('--quick');

async function control(backend: MemoryBackend, pemFile?: string): Promise<Control> {
  const server: Record<string, unknown> = { host: '127.0.0.1', port: 0 };
  if (pemFile !== undefined) server.pem_file = pemFile;
  return createHttpControl(
    { module: 'aimm-store/controls/http', server },
    {
      name: 'bench',
      logger: pino({ level: 'silent' }),
      metrics: new MetricsRegistry(),
      backend,
      status: () => ({ ready: true, backend: backend.status() }),
    },
  );
}

type Get = (path: string) => Promise<void>;

/** One GET, its body read to the end and its length checked. */
function getter(port: number, tls: { ca: Buffer } | null, keepAlive: boolean, size: number): Get {
  // One client context for every connection: what is measured is the handshake, not the client
  // parsing its CA again each time (a long-lived client builds it once too).
  const secureContext = tls === null ? undefined : createSecureContext({ ca: tls.ca });
  const agent = keepAlive
    ? tls === null
      ? new HttpAgent({ keepAlive: true, maxSockets: 1 })
      : new HttpsAgent({ keepAlive: true, maxSockets: 1, secureContext })
    : false;
  return (path) =>
    new Promise((resolve, reject) => {
      const done = (res: IncomingMessage) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
        });
        res.on('end', () =>
          res.statusCode === 200 && (size < 0 || got === size)
            ? resolve()
            : reject(new Error(`GET ${path}: ${res.statusCode}, ${got} bytes`)),
        );
      };
      const options = { host: '127.0.0.1', port, path, agent };
      const req =
        tls === null ? httpGet(options, done) : httpsGet({ ...options, ca: tls.ca }, done);
      req.on('error', reject);
    });
}

interface Cost {
  /** Wall-clock ms per request. */
  wall: number;
  /** CPU ms per request (client and server together: one process), less sensitive to a busy machine. */
  cpu: number;
}

/** Per-request cost over `n` sequential requests. */
async function perRequest(get: Get, path: string, n: number): Promise<Cost> {
  const c = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < n; i++) await get(path);
  const wall = (performance.now() - t) / n;
  const used = process.cpuUsage(c);
  return { wall, cpu: (used.user + used.system) / 1000 / n };
}

async function compare(label: string, plain: Get, tls: Get, path: string, n: number) {
  await perRequest(plain, path, Math.ceil(n / 4)); // warm-up
  await perRequest(tls, path, Math.ceil(n / 4));
  const rounds = quick ? 3 : 7;
  const p: Cost[] = [];
  const t: Cost[] = [];
  for (let r = 0; r < rounds; r++) {
    const tlsFirst = r % 2 === 0;
    const a = tlsFirst ? await perRequest(tls, path, n) : null;
    const b = await perRequest(plain, path, n);
    const c = a ?? (await perRequest(tls, path, n));
    p.push(b);
    t.push(c);
  }
  const line = (what: keyof Cost) => {
    const ratios = t.map((x, i) => x[what] / (p[i] as Cost)[what]);
    return (
      `${what} plain ${median(p.map((x) => x[what])).toFixed(3)} ms, TLS ` +
      `${median(t.map((x) => x[what])).toFixed(3)} ms, ratio ${median(ratios).toFixed(2)} ` +
      `(${Math.min(...ratios).toFixed(2)} – ${Math.max(...ratios).toFixed(2)})`
    );
  };
  console.log(`${label}, per request:\n  ${line('wall')}\n  ${line('cpu')}`);
}

async function main(): Promise<void> {
  const why = noOpenssl();
  if (why !== false) {
    console.log(`skipped: ${why}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'aimm-bench-tls-'));
  const backend = new MemoryBackend();
  const controls: Control[] = [];
  try {
    const ca = makeCa(dir);
    const caPem = readFileSync(ca.cert);
    const ec = makeCert(dir, ca, 'server-ec');
    const rsa = makeCert(dir, ca, 'server-rsa', { key: 'rsa' });
    const plain = await control(backend);
    const tlsEc = await control(backend, ec.pem);
    const tlsRsa = await control(backend, rsa.pem);
    controls.push(plain, tlsEc, tlsRsa);
    const size = 1024 * 1024;
    const { meta } = await backend.createModel('bench.Model', new Uint8Array(size).fill(7));
    const model = `/models/${meta.instanceId}`;
    const n = quick ? 100 : 400;
    const port = (c: Control) => c.address.port;
    const tls = { ca: caPem };

    await compare(
      'GET /readyz, new connection each, EC P-256 certificate',
      getter(port(plain), null, false, -1),
      getter(port(tlsEc), tls, false, -1),
      '/readyz',
      n,
    );
    await compare(
      'GET /readyz, new connection each, RSA 2048 certificate',
      getter(port(plain), null, false, -1),
      getter(port(tlsRsa), tls, false, -1),
      '/readyz',
      n,
    );
    await compare(
      'GET /models/{id} 1 MiB, new connection each, EC P-256',
      getter(port(plain), null, false, size),
      getter(port(tlsEc), tls, false, size),
      model,
      Math.ceil(n / 4),
    );
    await compare(
      'GET /models/{id} 1 MiB, one kept-alive connection, EC P-256',
      getter(port(plain), null, true, size),
      getter(port(tlsEc), tls, true, size),
      model,
      Math.ceil(n / 4),
    );
  } finally {
    for (const c of controls) await c.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
