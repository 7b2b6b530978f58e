/**
 * Loading the golden vectors of `../shared/hat-vectors/` and converting their JSON value form
 * (README "JSON value form") to and from codec values; the recorded step form the Hat and the
 * monitor conversations share.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// dist/test/hat → repository root is three levels up. The vectors are a verbatim copy of the
// team's shared/hat-vectors/ (see test/vectors/README.md), kept in the repository so a clean clone
// tests on its own.
const ROOT = resolve(here, '..', '..', '..');

export const VECTORS_DIR = process.env.HAT_VECTORS_DIR ?? resolve(ROOT, 'test', 'vectors', 'hat');

export function loadVectors<T = unknown>(file: string): T {
  return JSON.parse(readFileSync(join(VECTORS_DIR, file), 'utf8')) as T;
}

export function conversationFiles(): string[] {
  return readdirSync(join(VECTORS_DIR, 'conversations'))
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** A recorded chatter frame's `decoded` form (payload in value form). */
export interface Decoded {
  id: number;
  first: number;
  owner: boolean;
  token: boolean;
  last: boolean;
  data: { type: string; data_hex: string };
  payload: unknown;
}

/** One frame of a recorded conversation, in one direction of one connection. */
export interface FrameStep {
  conn: string;
  dir: 'c2s' | 's2c';
  t_ms: number;
  frame_hex: string;
  decoded: Decoded;
  eof?: undefined;
}

/** One step of a recorded conversation: a frame, or the end of one direction of a connection. */
export type Step =
  | FrameStep
  | {
      conn: string;
      dir: 'c2s' | 's2c';
      t_ms: number;
      eof: true;
      frame_hex?: undefined;
      decoded?: undefined;
    };

export function isFrame(step: Step): step is FrameStep {
  return step.eof !== true;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function unhex(text: string): Buffer {
  return Buffer.from(text, 'hex');
}

/** Value form → codec value: `{bigint}` → bigint, `{hex}` → bytes, `{float}` → special number. */
export function fromVectorValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromVectorValue);
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    const o = v as Record<string, unknown>;
    if (keys.length === 1) {
      if (keys[0] === 'bigint') return BigInt(o.bigint as string);
      if (keys[0] === 'hex') return unhex(o.hex as string);
      if (keys[0] === 'float') {
        const f = o.float as string;
        return f === '-0' ? -0 : Number(f);
      }
    }
    return Object.fromEntries(keys.map((k) => [k, fromVectorValue(o[k])]));
  }
  return v;
}

/** Codec value → value form (the inverse of {@link fromVectorValue}). */
export function toVectorValue(v: unknown): unknown {
  if (typeof v === 'bigint') return { bigint: v.toString() };
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { float: 'NaN' };
    if (v === Number.POSITIVE_INFINITY) return { float: 'Infinity' };
    if (v === Number.NEGATIVE_INFINITY) return { float: '-Infinity' };
    if (Object.is(v, -0)) return { float: '-0' };
    return v;
  }
  if (v instanceof Uint8Array) return { hex: hex(v) };
  if (Array.isArray(v)) return v.map(toVectorValue);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toVectorValue(x)]));
  }
  return v;
}
