/**
 * AIMM's model event format (aimm/server/backend/event.py), both ways.
 *
 * - type `[...model_prefix, String(instance_id)]` (canonical decimal, id >= 1);
 * - no source timestamp;
 * - JSON payload text `{"type": <model type>, "instance": <standard padded base64>}` written exactly as
 *   Python's `json.dumps` writes it (separators `", "`/`": "`, non-ASCII and DEL as lowercase `\uXXXX`),
 *   so our register requests are byte-identical to AIMM's;
 * - a delete is the same type with no payload (a tombstone; AIMM itself cannot read it).
 */
import type {
  Event,
  EventPayloadJson,
  EventType,
  RegisterEvent,
} from '../../hat/eventer/common.js';
import { markTrustedJsonPayload, pythonJsonString } from '../../hat/eventer/json.js';
import {
  Base64TextPart,
  jsonPayloadSize,
  PartsJsonPayload,
  type TextPart,
} from '../../hat/eventer/payload.js';

/** A decoded model event. */
export type ModelEvent =
  | { kind: 'model'; instanceId: number; modelType: string; instance: Uint8Array }
  | { kind: 'tombstone'; instanceId: number };

/** Why an event under the prefix is not a model event. `instanceId` is set when the type was fine. */
export interface MalformedEvent {
  kind: 'malformed';
  reason: MalformedReason;
  detail: string;
  instanceId: number | null;
}

export type MalformedReason =
  | 'bad_type'
  | 'bad_id'
  | 'binary_payload'
  | 'bad_json'
  | 'not_aimm_shaped'
  | 'bad_base64';

/**
 * The exact JSON payload text AIMM writes for a model, in three parts: head, the model's base64,
 * tail (sent one after another, never joined into one large string). All ASCII: the model type is
 * escaped as Python escapes it (non-ASCII as `\uXXXX`), the rest is base64 and punctuation.
 * `base64`: the caller's base64 of exactly these bytes (`CreateOptions.base64`), used when its
 * length is right; otherwise the base64 is a {@link Base64TextPart}, encoded as it is written.
 */
export function modelPayloadParts(
  modelType: string,
  instance: Uint8Array,
  base64?: string,
): TextPart[] {
  const part = new Base64TextPart(instance);
  const b64 = base64 !== undefined && base64.length === part.length ? base64 : part;
  return [`{"type": ${pythonJsonString(modelType)}, "instance": "`, b64, '"}'];
}

/** The exact JSON payload text AIMM writes for a model. */
export function modelPayloadText(modelType: string, instance: Uint8Array): string {
  return modelPayloadParts(modelType, instance).join('');
}

export function modelEventType(prefix: readonly string[], instanceId: number): string[] {
  return [...prefix, String(instanceId)];
}

/** The register event of a create or update. */
export function modelRegisterEvent(
  prefix: readonly string[],
  instanceId: number,
  modelType: string,
  instance: Uint8Array,
  base64?: string,
): RegisterEvent {
  return {
    type: modelEventType(prefix, instanceId),
    sourceTimestamp: null,
    // Built here from a JSON-escaped string and base64: valid JSON (no need to re-check it) and
    // ASCII (written byte for byte).
    payload: markTrustedJsonPayload<EventPayloadJson>(
      new PartsJsonPayload(modelPayloadParts(modelType, instance, base64), true),
    ),
  };
}

/** The register event of a delete: the model's type with no payload. */
export function tombstoneRegisterEvent(
  prefix: readonly string[],
  instanceId: number,
): RegisterEvent {
  return { type: modelEventType(prefix, instanceId), sourceTimestamp: null, payload: null };
}

/** Bytes a register event adds to a request (for batch bounds): type segments plus payload text. */
export function registerEventSize(event: RegisterEvent): number {
  let n = 16;
  for (const seg of event.type) n += seg.length + 2;
  const p = event.payload;
  if (p !== null) n += p.kind === 'json' ? jsonPayloadSize(p) : p.data.length + p.type.length;
  return n;
}

/** The instance id encoded in an event type, or null when the type is not `[...prefix, <id>]`. */
export function parseInstanceId(
  prefix: readonly string[],
  type: EventType,
): { id: number } | MalformedEvent {
  if (type.length !== prefix.length + 1) {
    const what = type.length === prefix.length ? 'the bare prefix' : `${type.length} segments`;
    return malformed('bad_type', `event type is ${what}, expected [...prefix, <id>]`, null);
  }
  for (let i = 0; i < prefix.length; i++)
    if (type[i] !== prefix[i])
      return malformed('bad_type', 'event type is outside the prefix', null);
  const seg = type[prefix.length] as string;
  if (!/^[1-9][0-9]{0,15}$/.test(seg) || !Number.isSafeInteger(Number(seg)))
    return malformed(
      'bad_id',
      `instance id segment '${truncate(seg)}' is not a positive decimal`,
      null,
    );
  return { id: Number(seg) };
}

/**
 * Decodes standard base64 with padding, or returns null for anything else. Node's decoder skips
 * characters outside the alphabet and stops at an inner `=`; either makes the output shorter than
 * the length the text announces, which is what is checked (linear, native speed on megabytes).
 * Node also accepts the URL-safe `-` and `_`, which are refused here.
 */
export function decodePaddedBase64(s: string): Buffer | null {
  const n = s.length;
  if (n % 4 !== 0) return null;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  if (s.includes('-') || s.includes('_')) return null;
  const buf = Buffer.from(s, 'base64');
  return buf.length === (n / 4) * 3 - pad ? buf : null;
}

export function isPaddedBase64(s: string): boolean {
  return decodePaddedBase64(s) !== null;
}

/** Decodes a Hat event under the prefix into a model event, or says why it is malformed. */
export function decodeModelEvent(
  prefix: readonly string[],
  event: Pick<Event, 'type' | 'payload'>,
): ModelEvent | MalformedEvent {
  try {
    return decode(prefix, event);
  } catch (err) {
    // Nothing a peer sends may break the backend; an unforeseen failure is just a bad event.
    return malformed('not_aimm_shaped', `cannot decode: ${(err as Error).message}`, null);
  }
}

function decode(
  prefix: readonly string[],
  event: Pick<Event, 'type' | 'payload'>,
): ModelEvent | MalformedEvent {
  const parsed = parseInstanceId(prefix, event.type);
  if ('kind' in parsed) return parsed;
  const instanceId = parsed.id;
  const p = event.payload;
  if (p === null) return { kind: 'tombstone', instanceId };
  if (p.kind !== 'json')
    return malformed('binary_payload', 'binary payload, expected AIMM JSON', instanceId);
  let value: unknown;
  try {
    value = JSON.parse(p.text);
  } catch (err) {
    return malformed('bad_json', `payload is not JSON (${(err as Error).message})`, instanceId);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return malformed('not_aimm_shaped', 'payload is not a JSON object', instanceId);
  const obj = value as Record<string, unknown>;
  if (typeof obj.type !== 'string')
    return malformed('not_aimm_shaped', "payload has no string 'type'", instanceId);
  if (typeof obj.instance !== 'string')
    return malformed('not_aimm_shaped', "payload has no string 'instance'", instanceId);
  const buf = decodePaddedBase64(obj.instance);
  if (buf === null)
    return malformed('bad_base64', "payload 'instance' is not standard padded base64", instanceId);
  return {
    kind: 'model',
    instanceId,
    modelType: obj.type,
    instance: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength),
  };
}

function malformed(
  reason: MalformedReason,
  detail: string,
  instanceId: number | null,
): MalformedEvent {
  return { kind: 'malformed', reason, detail, instanceId };
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
