/**
 * Helpers for the event backend tests: a test peer, a backend context whose Hat connector points at
 * it (short pings and timeouts), a log capture, temp folders, waiting for conditions and changes.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Subscription } from 'rxjs';
import type { Backend, BackendContext, ModelChange } from '../../src/backend/types.js';
import type { EventBackend } from '../../src/backends/event/backend.js';
import { create } from '../../src/backends/event.js';
import { MetricsRegistry } from '../../src/common/metrics.js';
import { FrameReader } from '../../src/hat/chatter/framing.js';
import {
  type ChatterMsg,
  DEFAULT_MAX_FRAME_SIZE,
  decodeBody,
} from '../../src/hat/chatter/message.js';
import {
  type Event,
  type EventerClient,
  jsonPayload,
  type QueryParams,
  type QueryResult,
  type RegisterEvent,
} from '../../src/hat/eventer/common.js';
import { createHatConnector } from '../../src/hat/eventer/connector.js';
import { type HatPeer, type HatPeerOptions, startHatPeer } from '../peer/hat-peer.js';

export const PREFIX = ['aimm', 'model'];

/** Pino lines written by the backend, parsed. */
export class LogCapture {
  readonly lines: Record<string, unknown>[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });

  find(re: RegExp): Record<string, unknown>[] {
    return this.lines.filter((l) => re.test(String(l.msg)));
  }
}

export interface TestContext extends BackendContext {
  logs: LogCapture;
}

/** A backend context whose Hat connector points at `peer` (or at several, in fail-over order). */
export function peerContext(
  peer: HatPeer | { host: string; port: number } | readonly { host: string; port: number }[],
  opts: { name?: string; metrics?: MetricsRegistry; clientName?: string } = {},
): TestContext {
  const logs = new LogCapture();
  const logger = pino({ level: 'debug' }, logs.stream);
  return {
    name: opts.name ?? 'test',
    logger,
    metrics: opts.metrics ?? new MetricsRegistry(),
    hat: createHatConnector({
      addresses: (Array.isArray(peer) ? peer : [peer]).map((p) => ({ host: p.host, port: p.port })),
      clientName: opts.clientName ?? `aimm-store/${opts.name ?? 'test'}`,
      pingDelay: 2000,
      pingTimeout: 2000,
      connectTimeout: 2000,
    }),
    logs,
  };
}

export async function startPeer(opts: HatPeerOptions = {}): Promise<HatPeer> {
  return startHatPeer({ flushDelayMs: 20, ...opts });
}

/** Fast reconnects and timeouts for tests. */
export const FAST = {
  reconnect: { min_delay_ms: 20, max_delay_ms: 200 },
  request_timeout_ms: 5000,
  close_timeout_ms: 2000,
};

export function eventConf(extra: Record<string, unknown> = {}): Record<string, unknown> & {
  module: string;
} {
  return { module: 'aimm-store/backends/event', model_prefix: PREFIX, ...FAST, ...extra };
}

export async function openBackend(
  ctx: BackendContext,
  extra: Record<string, unknown> = {},
  waitReady = true,
): Promise<EventBackend> {
  const b = create(eventConf(extra), ctx) as EventBackend;
  if (waitReady) await withTimeout(b.whenReady(), 10_000, 'backend ready');
  return b;
}

export function tempDir(prefix = 'aimm-store-event-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` until it is true (fails after `ms`). */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Records a backend's changes. */
export class ChangeLog {
  readonly changes: ModelChange[] = [];
  private readonly sub: Subscription;
  constructor(backend: Backend) {
    this.sub = backend.changes$.subscribe((c) => this.changes.push(c));
  }
  async waitFor(
    pred: (c: ModelChange) => boolean,
    what: string,
    ms = 10_000,
  ): Promise<ModelChange> {
    await waitFor(() => this.changes.some(pred), what, ms);
    return this.changes.find(pred) as ModelChange;
  }
  stop(): void {
    this.sub.unsubscribe();
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

/**
 * A TCP proxy in front of the peer that records the chatter messages clients send and counts the
 * bytes the server sends back.
 */
export interface RecordingProxy {
  host: string;
  port: number;
  /** Client → server messages, in order, across all connections. */
  readonly sent: ChatterMsg[];
  /** Bytes the server sent to clients, across all connections. */
  readonly receivedBytes: number;
  close(): Promise<void>;
}

export async function startRecordingProxy(target: {
  host: string;
  port: number;
}): Promise<RecordingProxy> {
  const sent: ChatterMsg[] = [];
  let receivedBytes = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE);
    client.on('data', (chunk: Buffer) => {
      reader.push(chunk, (body) => sent.push(decodeBody(body)));
    });
    upstream.on('data', (chunk: Buffer) => {
      receivedBytes += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('close', end);
      s.on('error', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port: addr.port,
    sent,
    get receivedBytes() {
      return receivedBytes;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Makes every eventer client the context's connector opens call `replacement` (which gets the
 * method's arguments and the real client) instead of its own method `name`.
 */
function interceptMethod<K extends 'query' | 'register'>(
  ctx: BackendContext,
  name: K,
  replacement: (
    arg: Parameters<EventerClient[K]>[0],
    client: EventerClient,
  ) => ReturnType<EventerClient[K]>,
): void {
  const hat = ctx.hat;
  if (hat === null) throw new Error('no Hat connector');
  ctx.hat = {
    addresses: hat.addresses,
    connect: async (options) => {
      const client = await hat.connect(options);
      return new Proxy(client, {
        get(target, prop, receiver) {
          if (prop === name)
            return (arg: Parameters<EventerClient[K]>[0]) => replacement(arg, target);
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    },
  };
}

/**
 * Makes every eventer client the context's connector opens answer queries through `answer`
 * (which gets the query and the real client): to simulate a Hat whose time series holds less than
 * its server history, or loses an event between two pages.
 */
export function interceptQueries(
  ctx: BackendContext,
  answer: (params: QueryParams, client: EventerClient) => Promise<QueryResult>,
): void {
  interceptMethod(ctx, 'query', answer);
}

/**
 * Makes every eventer client the context's connector opens send its register requests through
 * `register` (which gets the events and the real client): to hold, refuse or reorder answers.
 */
export function interceptRegisters(
  ctx: BackendContext,
  register: (events: RegisterEvent[], client: EventerClient) => Promise<Event[] | null>,
): void {
  interceptMethod(ctx, 'register', register);
}

export function metricValue(ctx: BackendContext, name: string, labels = ''): number {
  const re = new RegExp(
    `^aimm_store_${name}${labels === '' ? '' : `\\{${labels.replace(/[{}]/g, '')}\\}`} (\\S+)$`,
    'm',
  );
  const m = re.exec(ctx.metrics.render());
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

/** A model event as another writer (AIMM) registers it. */
export function aimmEvent(id: number, data: string, modelType = 'seed.Model'): RegisterEvent {
  return {
    type: [...PREFIX, String(id)],
    sourceTimestamp: null,
    payload: jsonPayload({ type: modelType, instance: Buffer.from(data).toString('base64') }),
  };
}

/** Hat's view over every server id: per model id, its event count and last payload (null = tombstone). */
export function hatView(peer: HatPeer): Map<number, { count: number; last: string | null }> {
  const out = new Map<number, { count: number; last: string | null }>();
  const events = [...peer.events].sort(
    (a, b) =>
      Number(a.timestamp.s) - Number(b.timestamp.s) ||
      a.timestamp.us - b.timestamp.us ||
      a.id.server - b.id.server ||
      a.id.session - b.id.session ||
      a.id.instance - b.id.instance,
  );
  for (const e of events) {
    if (e.type.length !== 3 || e.type[0] !== PREFIX[0] || e.type[1] !== PREFIX[1]) continue;
    const id = Number(e.type[2]);
    const last = e.payload?.kind === 'json' ? e.payload.text : null;
    out.set(id, { count: (out.get(id)?.count ?? 0) + 1, last });
  }
  return out;
}

/** The backend's models agree with Hat's view: live set, revision = event count, bytes. */
export async function assertMatchesHat(b: Backend, peer: HatPeer, what: string): Promise<void> {
  const view = hatView(peer);
  const live = [...view].filter(([, v]) => v.last !== null).map(([id]) => id);
  const models = await b.getModels();
  assert.deepEqual(
    models.map((m) => m.instanceId),
    live.sort((x, y) => x - y),
    `${what}: live models`,
  );
  for (const m of models) {
    const h = view.get(m.instanceId);
    assert.equal(m.revision, h?.count, `${what}: revision of ${m.instanceId}`);
    const expected = JSON.parse(h?.last ?? 'null') as { instance: string };
    const got = await b.getModel(m.instanceId);
    assert.equal(Buffer.from(got?.instance ?? []).toString('base64'), expected.instance);
  }
}

/** The backend's last "recovered from Hat" log line. */
export function recovered(ctx: TestContext): {
  mode: string;
  via: string;
  rebuilt: boolean;
  events: number;
  received: number;
  models: number;
} {
  const l = ctx.logs.find(/recovered from Hat/).at(-1);
  assert.ok(l !== undefined, 'a recovery log line');
  return l as unknown as ReturnType<typeof recovered>;
}

/** Removes a snapshot file and its -wal and -shm files (those that exist). */
export function removeSnapshot(path: string): void {
  for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
}

/** Copies a snapshot file with its -wal and -shm files (those that exist) over `to`. */
export function copySnapshot(from: string, to: string): void {
  removeSnapshot(to);
  copyFileSync(from, to);
  for (const s of ['-wal', '-shm']) if (existsSync(from + s)) copyFileSync(from + s, to + s);
}
