/**
 * The Hat test peer in a process of its own, for benches that measure a client against it
 * (`bench/remote-peer.ts` forks this file): a real Hat answers queries in its own process (the
 * LMDB backend walks time series in an executor thread), so the peer's synchronous walks must not
 * block the thread of the backend being measured.
 *
 * Started with the peer's options as JSON in `argv[2]`; it reports `{ ready: { host, port } }` over
 * IPC, then answers requests `{ id, op, args }` with `{ id, result }` or `{ id, error }`. Seeding
 * happens here, from parameters (registering a million events over the eventer protocol would take
 * longer than the bench): see {@link ops}.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { modelRegisterEvent, tombstoneRegisterEvent } from '../src/backends/event/format.js';
import type { HatPeerOptions } from '../test/peer/hat-peer.js';
import { startHatPeer } from '../test/peer/hat-peer.js';
import { blob } from './model-bytes.js';
import { registerNoise } from './peer-load.js';

/** Per model id under a prefix: [id, events of the id, sha256 of its last instance or null]. */
export type HatModelRow = [number, number, string | null];

export interface PeerStats {
  events: number;
  /** Entries decoded by time-series and server queries so far. */
  walked: number;
  /** Time spent answering queries so far. */
  queryMs: number;
}

const peerOptions = JSON.parse(process.argv[2] ?? '{}') as HatPeerOptions;
const peer = await startHatPeer(peerOptions);

const ops: Record<string, (args: Record<string, unknown>) => unknown> = {
  /** `n` unrelated events (`devices` devices, batches of `batch`). */
  noise: (a) => {
    registerNoise(peer, Number(a.n), { devices: Number(a.devices), batch: Number(a.batch) });
    return peer.events.length;
  },
  /** Creates models `from`..`to` (inclusive) of `size` bytes with `seed`, 500 per register. */
  create: (a) => {
    const prefix = a.prefix as string[];
    const to = Number(a.to);
    for (let i = Number(a.from); i <= to; i += 500) {
      const batch = [];
      for (let id = i; id <= Math.min(to, i + 499); id++)
        batch.push(
          modelRegisterEvent(prefix, id, String(a.type), blob(Number(a.size), Number(a.seed))),
        );
      peer.register(batch);
    }
    return peer.events.length;
  },
  /** Updates each of `ids`, one register each, with `seed`. */
  update: (a) => {
    for (const id of a.ids as number[])
      peer.register([
        modelRegisterEvent(
          a.prefix as string[],
          id,
          String(a.type),
          blob(Number(a.size), Number(a.seed)),
        ),
      ]);
    return peer.events.length;
  },
  /** Deletes each of `ids` (a tombstone each). */
  remove: (a) => {
    for (const id of a.ids as number[])
      peer.register([tombstoneRegisterEvent(a.prefix as string[], id)]);
    return peer.events.length;
  },
  prune: (a) => peer.pruneTimeseries(Number(a.n)),
  stats: (): PeerStats => ({
    events: peer.events.length,
    walked: peer.walked,
    queryMs: peer.queryMs,
  }),
  /** Every model id under `prefix` Hat holds events of (every server id), in id order. */
  models: (a): HatModelRow[] => {
    const prefix = a.prefix as string[];
    const out = new Map<number, { count: number; last: string | null }>();
    for (const e of peer.events) {
      if (e.type.length !== prefix.length + 1 || prefix.some((p, i) => e.type[i] !== p)) continue;
      const id = Number(e.type[prefix.length]);
      const last = e.payload?.kind === 'json' ? e.payload.text : null;
      out.set(id, { count: (out.get(id)?.count ?? 0) + 1, last });
    }
    return [...out]
      .sort(([x], [y]) => x - y)
      .map(([id, v]) => [id, v.count, v.last === null ? null : sha256OfInstance(v.last)]);
  },
};

function sha256OfInstance(text: string): string {
  const v = JSON.parse(text) as { instance: string };
  return createHash('sha256').update(Buffer.from(v.instance, 'base64')).digest('hex');
}

process.on('message', (msg: { id: number; op: string; args?: Record<string, unknown> }) => {
  if (msg.op === 'close') {
    void peer.close().then(() => {
      process.send?.({ id: msg.id, result: null }, () => process.exit(0));
    });
    return;
  }
  const t0 = performance.now();
  try {
    const op = ops[msg.op];
    if (op === undefined) throw new Error(`unknown op ${msg.op}`);
    const result = op(msg.args ?? {});
    process.send?.({ id: msg.id, result, ms: performance.now() - t0 });
  } catch (err) {
    process.send?.({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
  }
});
// The parent died: nothing more to serve.
process.on('disconnect', () => void peer.close().then(() => process.exit(0)));
process.send?.({ ready: { host: peer.host, port: peer.port } });
