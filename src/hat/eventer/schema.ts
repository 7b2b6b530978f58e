/**
 * The SBS schema of the eventer protocol, module `HatEventer` (hat-event >= 0.9.17,
 * `schemas_sbs/eventer.sbs`), as typed definitions. Records list fields in wire order and choices
 * list entries in index order (§3.1 of the protocol notes); never reorder them.
 *
 * Values use the generic SBS value form (choices as `[name, value]`, Optional as `T | null`); see
 * `codec.ts` for the mapping to the event data model of `common.ts`.
 */
import {
  alias,
  array,
  boolean,
  bytes,
  choice,
  type Infer,
  integer,
  none,
  optional,
  record,
  type SbsType,
  string,
} from '../sbs/codec.js';

export const Timestamp = record('HatEventer.Timestamp', { s: integer, us: integer });
export const EventId = record('HatEventer.EventId', {
  server: integer,
  session: integer,
  instance: integer,
});
export const Status = choice('HatEventer.Status', {
  standby: none,
  starting: none,
  operational: none,
  stopping: none,
});
export const Order = choice('HatEventer.Order', { descending: none, ascending: none });
export const OrderBy = choice('HatEventer.OrderBy', { timestamp: none, sourceTimestamp: none });
export const EventType = alias('HatEventer.EventType', array(string));
export const EventPayloadBinary = record('HatEventer.EventPayloadBinary', {
  type: string,
  data: bytes,
});
export const EventPayloadJson = alias('HatEventer.EventPayloadJson', string);
export const EventPayload = choice('HatEventer.EventPayload', {
  binary: EventPayloadBinary,
  json: EventPayloadJson,
});
export const Event = record('HatEventer.Event', {
  id: EventId,
  type: EventType,
  timestamp: Timestamp,
  sourceTimestamp: optional(Timestamp),
  payload: optional(EventPayload),
});
export const RegisterEvent = record('HatEventer.RegisterEvent', {
  type: EventType,
  sourceTimestamp: optional(Timestamp),
  payload: optional(EventPayload),
});
export const QueryLatestParams = record('HatEventer.QueryLatestParams', {
  eventTypes: optional(array(EventType)),
});
export const QueryTimeseriesParams = record('HatEventer.QueryTimeseriesParams', {
  eventTypes: optional(array(EventType)),
  tFrom: optional(Timestamp),
  tTo: optional(Timestamp),
  sourceTFrom: optional(Timestamp),
  sourceTTo: optional(Timestamp),
  order: Order,
  orderBy: OrderBy,
  maxResults: optional(integer),
  lastEventId: optional(EventId),
});
export const QueryServerParams = record('HatEventer.QueryServerParams', {
  serverId: integer,
  persisted: boolean,
  maxResults: optional(integer),
  lastEventId: optional(EventId),
});
export const QueryParams = choice('HatEventer.QueryParams', {
  latest: QueryLatestParams,
  timeseries: QueryTimeseriesParams,
  server: QueryServerParams,
});
export const QueryResult = record('HatEventer.QueryResult', {
  events: array(Event),
  moreFollows: boolean,
});

export const MsgInitReq = record('HatEventer.MsgInitReq', {
  clientName: string,
  clientToken: optional(string),
  subscriptions: array(EventType),
  serverId: optional(integer),
  persisted: boolean,
});
export const MsgInitRes = choice('HatEventer.MsgInitRes', { success: Status, error: string });
export const MsgStatusNotify = alias('HatEventer.MsgStatusNotify', Status);
export const MsgEventsNotify = alias('HatEventer.MsgEventsNotify', array(Event));
export const MsgEventsAck = alias('HatEventer.MsgEventsAck', none);
export const MsgRegisterReq = alias('HatEventer.MsgRegisterReq', array(RegisterEvent));
export const MsgRegisterRes = choice('HatEventer.MsgRegisterRes', {
  events: array(Event),
  failure: none,
});
export const MsgQueryReq = alias('HatEventer.MsgQueryReq', QueryParams);
export const MsgQueryRes = alias('HatEventer.MsgQueryRes', QueryResult);

/** Every named type of the module, by full name (as it appears in `HatChatter.Data.type`). */
export const types: Readonly<Record<string, SbsType<unknown>>> = Object.fromEntries(
  (
    [
      Timestamp,
      EventId,
      Status,
      Order,
      OrderBy,
      EventType,
      EventPayloadBinary,
      EventPayloadJson,
      EventPayload,
      Event,
      RegisterEvent,
      QueryLatestParams,
      QueryTimeseriesParams,
      QueryServerParams,
      QueryParams,
      QueryResult,
      MsgInitReq,
      MsgInitRes,
      MsgStatusNotify,
      MsgEventsNotify,
      MsgEventsAck,
      MsgRegisterReq,
      MsgRegisterRes,
      MsgQueryReq,
      MsgQueryRes,
    ] as SbsType<unknown>[]
  ).map((t) => [t.name, t]),
);

export type SbsEvent = Infer<typeof Event>;
export type SbsRegisterEvent = Infer<typeof RegisterEvent>;
export type SbsTimestamp = Infer<typeof Timestamp>;
export type SbsEventId = Infer<typeof EventId>;
export type SbsEventPayload = Infer<typeof EventPayload>;
export type SbsStatus = Infer<typeof Status>;
export type SbsQueryParams = Infer<typeof QueryParams>;
export type SbsQueryResult = Infer<typeof QueryResult>;
export type SbsMsgInitReq = Infer<typeof MsgInitReq>;
export type SbsMsgInitRes = Infer<typeof MsgInitRes>;
export type SbsMsgRegisterRes = Infer<typeof MsgRegisterRes>;
