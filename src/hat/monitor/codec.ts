/**
 * Mapping between the monitor data model (`common.ts`) and the SBS value form of the
 * `HatObserver` schema (`schema.ts`), and encoders/decoders of whole observer messages.
 * Decoding never trusts the peer: malformed SBS, integers beyond 2^53 and message types the
 * receiving side does not accept raise {@link ProtocolError}.
 */
import { ProtocolError } from '../chatter/errors.js';
import { decode, encode, type Int, SbsError, type SbsType } from '../sbs/codec.js';
import type { BlessingReq, BlessingRes, ClientMsg, ComponentInfo, ServerMsg } from './common.js';
import * as S from './schema.js';

export const MSG_CLIENT = 'HatObserver.MsgClient';
export const MSG_SERVER = 'HatObserver.MsgServer';
export const MSG_CLOSE = 'HatObserver.MsgClose';
export const MSG_SLAVE = 'HatObserver.MsgSlave';
export const MSG_MASTER = 'HatObserver.MsgMaster';

function num(v: Int, what: string): number {
  if (typeof v === 'number') return v;
  throw new ProtocolError(`${what} ${v} is out of the supported range`);
}

function optNum(v: Int | null, what: string): number | null {
  return v === null ? null : num(v, what);
}

function decodePayload<T>(type: SbsType<T>, name: string, data: Uint8Array): T {
  try {
    return decode(type, data);
  } catch (err) {
    if (err instanceof SbsError)
      throw new ProtocolError(`malformed ${name}: ${err.message}`, { cause: err });
    throw err;
  }
}

function checkInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new TypeError(`${what} must be a safe integer`);
  return v;
}

function checkOptInt(v: unknown, what: string): number | null {
  return v === null ? null : checkInt(v, what);
}

// ---- the model ↔ SBS values ------------------------------------------------------------------

export function blessingReqFromSbs(v: S.SbsBlessingReq): BlessingReq {
  return { token: optNum(v.token, 'blessing token'), timestamp: v.timestamp };
}

export function blessingResFromSbs(v: S.SbsBlessingRes): BlessingRes {
  return { token: optNum(v.token, 'blessing response token'), ready: v.ready };
}

export function componentInfoFromSbs(v: S.SbsComponentInfo): ComponentInfo {
  return {
    cid: num(v.cid, 'cid'),
    mid: num(v.mid, 'mid'),
    name: v.name,
    group: v.group,
    data: v.data,
    rank: num(v.rank, 'rank'),
    blessingReq: blessingReqFromSbs(v.blessingReq),
    blessingRes: blessingResFromSbs(v.blessingRes),
  };
}

function blessingReqToSbs(v: BlessingReq): S.SbsBlessingReq {
  if (v.timestamp !== null && typeof v.timestamp !== 'number')
    throw new TypeError('blessing timestamp must be a number or null');
  return { token: checkOptInt(v.token, 'blessing token'), timestamp: v.timestamp };
}

function blessingResToSbs(v: BlessingRes): S.SbsBlessingRes {
  if (typeof v.ready !== 'boolean') throw new TypeError('blessingRes.ready must be a boolean');
  return { token: checkOptInt(v.token, 'blessing response token'), ready: v.ready };
}

function componentInfoToSbs(v: ComponentInfo): S.SbsComponentInfo {
  return {
    cid: checkInt(v.cid, 'cid'),
    mid: checkInt(v.mid, 'mid'),
    name: v.name,
    group: v.group,
    data: v.data,
    rank: checkInt(v.rank, 'rank'),
    blessingReq: blessingReqToSbs(v.blessingReq),
    blessingRes: blessingResToSbs(v.blessingRes),
  };
}

// ---- whole messages ------------------------------------------------------------------------------

export function encodeClientMsg(msg: ClientMsg): Buffer {
  for (const k of ['name', 'group', 'data'] as const)
    if (typeof msg[k] !== 'string') throw new TypeError(`MsgClient.${k} must be a string`);
  return encode(S.MsgClient, {
    name: msg.name,
    group: msg.group,
    data: msg.data,
    blessingRes: blessingResToSbs(msg.blessingRes),
  });
}

export function decodeClientMsg(data: Uint8Array): ClientMsg {
  const v = decodePayload(S.MsgClient, MSG_CLIENT, data);
  return {
    name: v.name,
    group: v.group,
    data: v.data,
    blessingRes: blessingResFromSbs(v.blessingRes),
  };
}

export function encodeServerMsg(msg: ServerMsg): Buffer {
  if (!Array.isArray(msg.components)) throw new TypeError('MsgServer.components must be an array');
  return encode(S.MsgServer, {
    cid: checkInt(msg.cid, 'cid'),
    mid: checkInt(msg.mid, 'mid'),
    components: msg.components.map(componentInfoToSbs),
  });
}

export function decodeServerMsg(data: Uint8Array): ServerMsg {
  const v = decodePayload(S.MsgServer, MSG_SERVER, data);
  return {
    cid: num(v.cid, 'cid'),
    mid: num(v.mid, 'mid'),
    components: v.components.map(componentInfoFromSbs),
  };
}

export function encodeClose(): Buffer {
  return Buffer.alloc(0);
}

/** What a component can receive on the component port. */
export type MonitorToComponent = { kind: 'server'; msg: ServerMsg } | { kind: 'close' };

/** Decodes a message received by a component; any other type is a {@link ProtocolError}. */
export function decodeMonitorMessage(type: string, data: Uint8Array): MonitorToComponent {
  if (type === MSG_SERVER) return { kind: 'server', msg: decodeServerMsg(data) };
  if (type === MSG_CLOSE) {
    decodePayload(S.MsgClose, MSG_CLOSE, data);
    return { kind: 'close' };
  }
  throw new ProtocolError(`unexpected message type '${type}' from the monitor`);
}

/** Decodes a message received by a monitor's component port; only MsgClient is accepted. */
export function decodeComponentMessage(type: string, data: Uint8Array): ClientMsg {
  if (type === MSG_CLIENT) return decodeClientMsg(data);
  throw new ProtocolError(`unexpected message type '${type}' on the component port`);
}
