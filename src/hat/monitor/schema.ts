/**
 * The SBS schema of hat-monitor's observer protocol, module `HatObserver`
 * (hat-monitor 0.8.21, `schemas_sbs/observer.sbs`), as typed definitions. Records list fields in
 * wire order; never reorder them. `MsgSlave` and `MsgMaster` travel only between monitors (the
 * master port); they are here so that the codec can name them, and a component port refuses them.
 */
import {
  array,
  boolean,
  float,
  type Infer,
  integer,
  none,
  optional,
  record,
  type SbsType,
  string,
} from '../sbs/codec.js';

export const BlessingReq = record('HatObserver.BlessingReq', {
  token: optional(integer),
  timestamp: optional(float),
});
export const BlessingRes = record('HatObserver.BlessingRes', {
  token: optional(integer),
  ready: boolean,
});
export const ComponentInfo = record('HatObserver.ComponentInfo', {
  cid: integer,
  mid: integer,
  name: optional(string),
  group: optional(string),
  data: string,
  rank: integer,
  blessingReq: BlessingReq,
  blessingRes: BlessingRes,
});
export const MsgClient = record('HatObserver.MsgClient', {
  name: string,
  group: string,
  data: string,
  blessingRes: BlessingRes,
});
export const MsgServer = record('HatObserver.MsgServer', {
  cid: integer,
  mid: integer,
  components: array(ComponentInfo),
});
export const MsgClose = none;
export const MsgSlave = record('HatObserver.MsgSlave', { components: array(ComponentInfo) });
export const MsgMaster = record('HatObserver.MsgMaster', {
  mid: integer,
  components: array(ComponentInfo),
});

export type SbsBlessingReq = Infer<typeof BlessingReq>;
export type SbsBlessingRes = Infer<typeof BlessingRes>;
export type SbsComponentInfo = Infer<typeof ComponentInfo>;
export type SbsMsgClient = Infer<typeof MsgClient>;
export type SbsMsgServer = Infer<typeof MsgServer>;

/** Every message type by its full name (as it appears in `HatChatter.Data.type`). */
export const messageTypes: Readonly<Record<string, SbsType<unknown>>> = {
  'HatObserver.MsgClient': MsgClient as SbsType<unknown>,
  'HatObserver.MsgServer': MsgServer as SbsType<unknown>,
  'HatObserver.MsgClose': MsgClose as SbsType<unknown>,
  'HatObserver.MsgSlave': MsgSlave as SbsType<unknown>,
  'HatObserver.MsgMaster': MsgMaster as SbsType<unknown>,
};
