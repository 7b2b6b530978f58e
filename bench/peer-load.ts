/**
 * The in-process test peer under load, for the event benchmarks: unrelated traffic
 * ({@link registerNoise}) and the peer's own time answering queries ({@link timePeerQueries}).
 */
import { performance } from 'node:perf_hooks';
import type { QueryParams, QueryResult, RegisterEvent } from '../src/hat/eventer/common.js';
import type { HatPeer } from '../test/peer/hat-peer.js';

/** Measures the time the in-process peer spends answering queries (it runs in this process). */
export function timePeerQueries(peer: HatPeer): { ms: number } {
  const acc = { ms: 0 };
  const p = peer as unknown as { query(params: QueryParams): QueryResult };
  const original = p.query.bind(peer);
  p.query = (params) => {
    const t0 = performance.now();
    try {
      return original(params);
    } finally {
      acc.ms += performance.now() - t0;
    }
  };
  return acc;
}

/**
 * Unrelated traffic: measurements and states of `devices` devices with source timestamps and
 * ~60-byte JSON payloads, registered server-side in batches, as a busy Hat installation holds them
 * beside the models.
 */
let noiseSeq = 0;
export function registerNoise(
  peer: HatPeer,
  n: number,
  opts: { devices?: number; batch?: number } = {},
): void {
  const devices = opts.devices ?? 200;
  const batchSize = opts.batch ?? 1000;
  for (let i = 0; i < n; i += batchSize) {
    const batch: RegisterEvent[] = [];
    for (let j = i; j < Math.min(n, i + batchSize); j++) {
      const k = noiseSeq++;
      batch.push({
        type: ['gateway', `device${k % devices}`, k % 4 === 0 ? 'state' : 'measurement', 'value'],
        sourceTimestamp: { s: 1_700_000_000 + (k >> 4), us: (k & 15) * 1000 },
        payload: { kind: 'json', text: `{"value": ${(k % 1000) / 8}, "quality": "good"}` },
      });
    }
    peer.register(batch);
  }
}
