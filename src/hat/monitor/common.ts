/**
 * hat-monitor's data model as seen by a component (hat-monitor 0.8.21, `hat.monitor.common`).
 * Integers are plain numbers (the monitor's counters stay far below 2^53; a larger one is a
 * protocol error). `data` stays the JSON text the monitor sent (its `json.dumps` re-encoding):
 * parse it where it is used.
 */

/** The master's blessing: a token (and the time it was given), or nulls when not blessed. */
export interface BlessingReq {
  token: number | null;
  /** Epoch seconds (the master's `time.time()`). */
  timestamp: number | null;
}

/** The component's answer: `ready` to run, and `token` = the request token while it runs. */
export interface BlessingRes {
  token: number | null;
  ready: boolean;
}

export interface ComponentInfo {
  /** Connection id, given by the component's local monitor (never reused in its lifetime). */
  cid: number;
  /** Monitor id (0: the master, or a monitor without one). */
  mid: number;
  /** Null until the component's first MsgClient reached the monitor. */
  name: string | null;
  group: string | null;
  /** JSON text as re-encoded by the monitor (`json.dumps`; `"null"` before the first MsgClient). */
  data: string;
  /** Lower wins BLESS_ONE. */
  rank: number;
  blessingReq: BlessingReq;
  blessingRes: BlessingRes;
}

/** Component → monitor: always the full set of its fields. */
export interface ClientMsg {
  name: string;
  group: string;
  /** JSON text. */
  data: string;
  blessingRes: BlessingRes;
}

/** Monitor → component: the recipient's own ids and the global state. */
export interface ServerMsg {
  /** The recipient's own cid. */
  cid: number;
  /** The monitor's id. */
  mid: number;
  /** Every component of the system, in the master's order. */
  components: ComponentInfo[];
}

/** Active = blessed, and the blessing echoed back as the component's response token. */
export function isActive(info: ComponentInfo): boolean {
  return info.blessingReq.token !== null && info.blessingReq.token === info.blessingRes.token;
}

/** The recipient's own entry in a MsgServer (absent before the monitor listed it). */
export function ownInfo(msg: ServerMsg): ComponentInfo | undefined {
  return msg.components.find((c) => c.cid === msg.cid && c.mid === msg.mid);
}

/** Parses a component's `data` text; undefined when it is not JSON. */
export function parseData(info: ComponentInfo): unknown {
  try {
    return JSON.parse(info.data) as unknown;
  } catch {
    return undefined;
  }
}
