/**
 * `max_upload_bytes_in_flight`: concurrent uploads wait for room instead of all allocating their
 * bodies at once; all succeed; the budget is never exceeded (checked through the control's gauge
 * and, independently, by the backend counting the bytes of the writes it holds at once).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import type { CreateOptions, WriteResult } from '../../src/backend/types.js';
import { MetricsRegistry } from '../../src/common/metrics.js';
import { UploadBudget } from '../../src/controls/http/upload-budget.js';
import { create } from '../../src/controls/http.js';
import type { Control, ControlContext } from '../../src/controls/types.js';
import { until } from '../daemon/harness.js';
import { MemoryBackend } from '../support/memory-backend.js';

/** Holds every create until `open()`; counts the bytes of the creates it holds at once. */
class GatedBackend extends MemoryBackend {
  heldBytes = 0;
  maxHeldBytes = 0;
  held = 0;
  private gate: Promise<void> = new Promise(() => {});
  private openGate: () => void = () => {};

  constructor() {
    super();
    this.close_();
  }

  /** Closes the gate: later creates wait again. */
  close_(): void {
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  open(): void {
    this.openGate();
  }

  override async createModel(
    modelType: string,
    instance: Uint8Array,
    options?: CreateOptions,
  ): Promise<WriteResult> {
    this.held++;
    this.heldBytes += instance.length;
    this.maxHeldBytes = Math.max(this.maxHeldBytes, this.heldBytes);
    try {
      await this.gate;
      return await super.createModel(modelType, instance, options);
    } finally {
      this.held--;
      this.heldBytes -= instance.length;
    }
  }
}

function post(
  port: number,
  body: Buffer,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/models?type=t',
        headers: { 'Content-Length': String(body.length) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function gauge(metrics: MetricsRegistry, name: string): number {
  const m = new RegExp(`^aimm_store_${name} (\\S+)$`, 'm').exec(metrics.render());
  return Number(m?.[1] ?? Number.NaN);
}

async function controlWith(
  backend: MemoryBackend,
  extra: Record<string, unknown>,
): Promise<{ control: Control; metrics: MetricsRegistry }> {
  const metrics = new MetricsRegistry();
  const context: ControlContext = {
    name: 'test',
    logger: pino({ level: 'silent' }),
    metrics,
    backend,
    status: () => ({ ready: true, backend: { ready: true } }),
  };
  const control = await create(
    { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 }, ...extra },
    context,
  );
  return { control, metrics };
}

describe('HTTP uploads within max_upload_bytes_in_flight', () => {
  const controls: Control[] = [];
  after(async () => {
    for (const c of controls) await c.close();
  });

  test('8 concurrent uploads of 100 kB with a 300 kB budget: 3 at a time, all stored', async () => {
    const backend = new GatedBackend();
    const { control, metrics } = await controlWith(backend, {
      max_upload_bytes_in_flight: 300_000,
    });
    controls.push(control);
    const bodies = Array.from({ length: 8 }, () => randomBytes(100_000));
    const answers = Promise.all(bodies.map((b) => post(control.address.port, b)));
    await until('3 uploads held by the backend, 5 waiting', async () => {
      return backend.held === 3 && gauge(metrics, 'http_uploads_waiting') === 5;
    });
    assert.equal(gauge(metrics, 'http_upload_bytes_in_flight'), 300_000);
    assert.equal(backend.heldBytes, 300_000);
    backend.open();
    const results = await answers;
    for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.json));
    // Every body stored exactly.
    const stored = await Promise.all(
      results.map((r) => backend.getModel(Number(r.json.instance_id))),
    );
    const got = new Set(stored.map((m) => Buffer.from(m?.instance ?? []).toString('hex')));
    for (const b of bodies) assert.ok(got.has(b.toString('hex')));
    assert.ok(backend.maxHeldBytes <= 300_000, `held ${backend.maxHeldBytes} bytes at once`);
    assert.equal(gauge(metrics, 'http_upload_bytes_in_flight'), 0);
    assert.equal(gauge(metrics, 'http_uploads_waiting'), 0);
  });

  test('an upload larger than the budget waits for the others, then proceeds alone', async () => {
    const backend = new GatedBackend();
    const { control, metrics } = await controlWith(backend, {
      max_upload_bytes_in_flight: 150_000,
    });
    controls.push(control);
    const small = randomBytes(100_000);
    const big = randomBytes(400_000);
    const first = post(control.address.port, small);
    await until('the small upload held', async () => backend.held === 1);
    const second = post(control.address.port, big);
    // Arrival order: a small upload after the big one waits behind it (it would fit otherwise).
    await until('the big upload waiting', async () => gauge(metrics, 'http_uploads_waiting') === 1);
    const third = post(control.address.port, randomBytes(10_000));
    await until('the third waiting', async () => gauge(metrics, 'http_uploads_waiting') === 2);
    assert.equal(backend.held, 1);
    backend.open();
    const [a, b, c] = await Promise.all([first, second, third]);
    assert.deepEqual([a.status, b.status, c.status], [201, 201, 201]);
    assert.equal(
      Buffer.from((await backend.getModel(Number(b.json.instance_id)))?.instance ?? []).equals(big),
      true,
    );
    assert.ok(backend.maxHeldBytes <= 400_000, `held ${backend.maxHeldBytes} bytes at once`);
  });

  test('an upload that waits longer than body_timeout_ms gets 503; the holder is unaffected', async () => {
    const backend = new GatedBackend();
    const { control } = await controlWith(backend, {
      max_upload_bytes_in_flight: 100_000,
      body_timeout_ms: 300,
    });
    controls.push(control);
    const first = post(control.address.port, randomBytes(100_000));
    await until('the first upload held', async () => backend.held === 1);
    const refused = await post(control.address.port, randomBytes(50_000));
    assert.equal(refused.status, 503);
    assert.equal(refused.json.code, 'unavailable');
    backend.open();
    assert.equal((await first).status, 201);
    assert.equal((await backend.getModels()).length, 1);
  });
});

describe('UploadBudget', () => {
  test('grants in arrival order; alone when larger than the limit; unknown length is all of it', async () => {
    const budget = new UploadBudget(100);
    const order: string[] = [];
    const r1 = await budget.reserve(60, 10_000);
    const p2 = budget.reserve(200, 10_000).then((r) => {
      order.push('big');
      return r;
    });
    const p3 = budget.reserve(10, 10_000).then((r) => {
      order.push('small');
      return r;
    });
    assert.equal(budget.waiting, 2);
    r1();
    r1(); // idempotent
    const r2 = await p2;
    assert.equal(budget.inFlight, 200);
    assert.deepEqual(order, ['big']);
    r2();
    const r3 = await p3;
    assert.deepEqual(order, ['big', 'small']);
    const p4 = budget.reserve(null, 10_000);
    assert.equal(budget.waiting, 1);
    r3();
    const r4 = await p4;
    assert.equal(budget.inFlight, 100);
    r4();
    assert.equal(budget.inFlight, 0);
    assert.equal(budget.peak, 100);
  });

  test('tryReserve: room now and nobody waiting, else null (it never jumps the queue)', async () => {
    const budget = new UploadBudget(100);
    const r1 = budget.tryReserve(60);
    assert.ok(r1 !== null);
    assert.equal(budget.tryReserve(50), null);
    const p2 = budget.reserve(50, 10_000);
    assert.equal(budget.tryReserve(10), null); // fits, but the 50 waits first
    r1();
    const r2 = await p2;
    const r3 = budget.tryReserve(10);
    assert.ok(r3 !== null);
    assert.equal(budget.inFlight, 60);
    r2();
    r3();
    const all = budget.tryReserve(null); // unknown length: the whole budget
    assert.ok(all !== null);
    assert.equal(budget.inFlight, 100);
    all();
    assert.equal(budget.inFlight, 0);
  });

  test('an aborted waiter leaves the queue and lets the next one through', async () => {
    const budget = new UploadBudget(100);
    const r1 = await budget.reserve(90, 10_000);
    const gone = new AbortController();
    const p2 = budget.reserve(50, 10_000, gone.signal);
    const p3 = budget.reserve(10, 10_000);
    gone.abort();
    await assert.rejects(p2, /went away/);
    const r3 = await p3; // fits beside the first once the head is gone
    assert.equal(budget.inFlight, 100);
    r1();
    r3();
    assert.throws(() => new UploadBudget(0), /positive integer/);
  });
});
