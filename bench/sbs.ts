/**
 * SBS benchmark: `node dist/bench/sbs.js [--quick]`.
 *
 * Encode+decode throughput of eventer messages through the typed codec (what the client and the
 * peer run), against `JSON.stringify` + `JSON.parse` of the same data in the same process:
 * - `MsgRegisterReq` with one event carrying a 1 KiB and a 1 MiB JSON payload (AIMM-shaped:
 *   `{"type": ..., "instance": <base64>}`);
 * - `MsgEventsNotify` with 1000 events (small JSON payloads).
 * A second row per case adds the chatter layer (`HatChatter.Msg` + framing). The ratio is
 * SBS ops/s divided by JSON ops/s (above 1: SBS is faster). SBS and JSON run in alternating short
 * rounds and the medians are reported, so load changes on a shared machine hit both alike.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { decodeBody, encodeFrame } from '../src/hat/chatter/message.js';
import {
  decodeEventsNotify,
  decodeRegisterReq,
  encodeEventsNotify,
  encodeRegisterReq,
} from '../src/hat/eventer/codec.js';
import type { Event, RegisterEvent } from '../src/hat/eventer/common.js';
import { median } from './stats.js';

export interface SbsBenchRow {
  name: string;
  bytes: number;
  sbsOpsPerSec: number;
  jsonOpsPerSec: number;
  /** SBS ops/s ÷ JSON ops/s. */
  ratio: number;
  sbsMBps: number;
}

function aimmPayload(size: number, seed: number): string {
  const raw = Buffer.alloc(Math.floor((size - 40) * 0.75));
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + seed) & 0xff;
  return JSON.stringify({
    type: 'sklearn.linear_model.LinearRegression',
    instance: raw.toString('base64'),
  });
}

function registerReq(size: number): RegisterEvent[] {
  return [
    {
      type: ['aimm', 'model', '1'],
      sourceTimestamp: null,
      payload: { kind: 'json', text: aimmPayload(size, 1) },
    },
  ];
}

function notify(count: number): Event[] {
  return Array.from({ length: count }, (_, i) => ({
    id: { server: 1, session: 1000 + i, instance: 1 },
    type: ['aimm', 'model', String(i + 1)],
    timestamp: { s: 1795777803 + i, us: (i * 7919) % 1_000_000 },
    sourceTimestamp: null,
    payload: { kind: 'json' as const, text: aimmPayload(160, i) },
  }));
}

/** Runs `fn` repeatedly for about `ms` milliseconds and returns ops/s. */
function opsPerSec(fn: () => void, ms: number): number {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    fn();
    n++;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

let sink = 0;

export function runSbsBench(
  options: { quick?: boolean; log?: (line: string) => void } = {},
): SbsBenchRow[] {
  const ms = options.quick ? 150 : 1000;
  const log = options.log ?? ((line: string) => console.log(line));
  const rows: SbsBenchRow[] = [];

  const rounds = options.quick ? 3 : 9;
  const measure = (name: string, value: unknown, sbs: () => number) => {
    const bytes = sbs();
    const runSbs = () => {
      sink += sbs();
    };
    const runJson = () => {
      const parsed = JSON.parse(JSON.stringify(value)) as unknown[];
      sink += parsed.length;
    };
    // Warm-up (JIT) of both sides before anything is counted.
    opsPerSec(runSbs, Math.max(200, ms / 2));
    opsPerSec(runJson, Math.max(200, ms / 2));
    const sbsRounds: number[] = [];
    const jsonRounds: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < rounds; i++) {
      sbsRounds.push(opsPerSec(runSbs, ms / rounds));
      jsonRounds.push(opsPerSec(runJson, ms / rounds));
      ratios.push((sbsRounds.at(-1) as number) / (jsonRounds.at(-1) as number));
    }
    const sbsOps = median(sbsRounds);
    const jsonOps = median(jsonRounds);
    const row = {
      name,
      bytes,
      sbsOpsPerSec: sbsOps,
      jsonOpsPerSec: jsonOps,
      ratio: median(ratios),
      sbsMBps: (sbsOps * bytes) / 1e6,
    };
    rows.push(row);
    log(
      `${name.padEnd(44)} ${String(bytes).padStart(9)} B  sbs ${sbsOps.toFixed(0).padStart(8)} op/s ` +
        `(${row.sbsMBps.toFixed(0).padStart(5)} MB/s)  json ${jsonOps.toFixed(0).padStart(8)} op/s  ratio ${row.ratio.toFixed(2)}`,
    );
  };

  log('SBS encode+decode vs JSON.stringify+JSON.parse of the same data (ratio = sbs/json op/s)');
  for (const [label, size] of [
    ['1 KiB', 1024],
    ['1 MiB', 1024 * 1024],
  ] as const) {
    const req = registerReq(size);
    measure(`MsgRegisterReq, ${label} JSON payload`, req, () => {
      const data = encodeRegisterReq(req);
      return decodeRegisterReq(data).length * 0 + data.length;
    });
    measure(`  + chatter frame`, req, () => {
      const frame = encodeFrame({
        id: 7,
        first: 7,
        owner: true,
        token: true,
        last: false,
        type: 'HatEventer.MsgRegisterReq',
        data: encodeRegisterReq(req),
      });
      const msg = decodeBody(frame.subarray(1 + (frame[0] as number)));
      return decodeRegisterReq(msg.data).length * 0 + frame.length;
    });
  }
  const events = notify(1000);
  measure('MsgEventsNotify, 1000 events', events, () => {
    const data = encodeEventsNotify(events);
    return decodeEventsNotify(data).length * 0 + data.length;
  });
  measure('  + chatter frame', events, () => {
    const frame = encodeFrame({
      id: 9,
      first: 9,
      owner: true,
      token: true,
      last: true,
      type: 'HatEventer.MsgEventsNotify',
      data: encodeEventsNotify(events),
    });
    const msg = decodeBody(frame.subarray(1 + (frame[0] as number)));
    return decodeEventsNotify(msg.data).length * 0 + frame.length;
  });
  if (sink === -1) log('');
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runSbsBench({ quick: process.argv.includes('--quick') });
}
