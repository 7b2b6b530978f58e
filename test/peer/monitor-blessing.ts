/**
 * The pieces of the hat-monitor 0.8.21 master that the monitor test double needs, ported from
 * `hat/monitor/server/blessing.py` and from Python's value semantics:
 *
 * - {@link calculateBlessing}: BLESS_ONE / BLESS_ALL per group, yielding only the changed
 *   requests, in Python's order (groups in order of first appearance, components in list order);
 * - {@link pythonDataKey}: a canonical key of a component's `data` such that two texts have equal
 *   keys exactly when Python's `json.loads` values compare equal (`==`): `1 == 1.0 == true`,
 *   `0 == -0.0 == false`, dicts ignore key order. The monitor's "nothing changed, send nothing"
 *   rule compares with `==`.
 *
 * Truthiness is Python's too: a response token 0 counts as no token (`if c.blessing_res.token`),
 * and `has_blessing` needs a truthy token and timestamp.
 */
import type { Int } from '../../src/hat/sbs/codec.js';

export type BlessingAlgorithm = 'BLESS_ONE' | 'BLESS_ALL';

export interface Request {
  token: Int | null;
  timestamp: number | null;
}

/** What the algorithms look at. */
export interface BlessingView {
  cid: number;
  mid: number;
  group: string | null;
  rank: number;
  blessingReq: Request;
  blessingRes: { token: Int | null; ready: boolean };
}

export interface BlessingChange {
  mid: number;
  cid: number;
  blessingReq: Request;
}

/** Python truthiness of an Optional(Integer) / Optional(Float): null, 0, 0n and 0.0 are false. */
function truthy(v: Int | number | null): boolean {
  return v !== null && v !== 0 && v !== 0n;
}

function hasBlessing(c: BlessingView): boolean {
  return truthy(c.blessingReq.token) && truthy(c.blessingReq.timestamp);
}

function sameRequest(a: Request, b: Request): boolean {
  return a.token === b.token && a.timestamp === b.timestamp;
}

const NO_REQUEST: Request = { token: null, timestamp: null };

function same(a: BlessingView, b: BlessingView): boolean {
  return a.mid === b.mid && a.cid === b.cid;
}

/**
 * `blessing.calculate`: the blessing requests to change. `issue` gives a new `{token, timestamp}`
 * (one counter per process); it is called exactly when Python calls `next(_next_tokens)`.
 */
export function calculateBlessing(
  components: readonly BlessingView[],
  groupAlgorithms: Readonly<Record<string, BlessingAlgorithm>>,
  defaultAlgorithm: BlessingAlgorithm,
  issue: () => Request,
): BlessingChange[] {
  const groups = new Map<string | null, BlessingView[]>();
  for (const c of components) {
    const list = groups.get(c.group);
    if (list === undefined) groups.set(c.group, [c]);
    else list.push(c);
  }
  const out: BlessingChange[] = [];
  for (const [group, members] of groups) {
    const algorithm =
      group !== null && Object.hasOwn(groupAlgorithms, group)
        ? (groupAlgorithms[group] as BlessingAlgorithm)
        : defaultAlgorithm;
    if (algorithm === 'BLESS_ALL') blessAll(members, issue, out);
    else blessOne(members, issue, out);
  }
  return out;
}

function blessAll(components: BlessingView[], issue: () => Request, out: BlessingChange[]): void {
  for (const c of components) {
    let req: Request;
    if (!c.blessingRes.ready) req = NO_REQUEST;
    else if (hasBlessing(c)) req = c.blessingReq;
    else req = issue();
    if (!sameRequest(c.blessingReq, req)) out.push({ mid: c.mid, cid: c.cid, blessingReq: req });
  }
}

/** `highlander_battle(highlander, c)`: the challenger `c` wins or the highlander stays. */
export function highlanderBattle(h: BlessingView | null, c: BlessingView): BlessingView {
  if (h === null) return c;
  if (c.rank < h.rank) return c;
  if (c.rank === h.rank) {
    const cb = hasBlessing(c);
    const hb = hasBlessing(h);
    if (cb && !hb) return c;
    if (cb && hb && (c.blessingReq.timestamp as number) < (h.blessingReq.timestamp as number))
      return c;
    if (((cb && hb) || (!cb && !hb)) && c.mid < h.mid) return c;
  }
  return h;
}

function blessOne(components: BlessingView[], issue: () => Request, out: BlessingChange[]): void {
  let highlander: BlessingView | null = null;
  for (const c of components) {
    if (!c.blessingRes.ready) continue;
    highlander = highlanderBattle(highlander, c);
  }
  // Handover: a new highlander waits until every other member revoked its response token.
  if (
    highlander !== null &&
    !(
      truthy(highlander.blessingRes.token) &&
      highlander.blessingRes.token === highlander.blessingReq.token
    )
  ) {
    const h: BlessingView = highlander;
    if (components.some((c) => truthy(c.blessingRes.token) && !same(c, h))) highlander = null;
  }
  for (const c of components) {
    let req: Request;
    if (highlander === null || !same(c, highlander)) req = NO_REQUEST;
    else if (!hasBlessing(c)) req = issue();
    else req = c.blessingReq;
    if (!sameRequest(c.blessingReq, req)) out.push({ mid: c.mid, cid: c.cid, blessingReq: req });
  }
}

// ---------------------------------------------------------------------------------------------
// Python equality of JSON values

/** CPython's `int` ⇄ `str` limit (`sys.int_info.default_max_str_digits`): json.loads refuses more. */
export const PYTHON_MAX_INT_DIGITS = 4300;

const STRING_TOKEN = /"(?:[^"\\]|\\.)*"/y;
const NUMBER_TOKEN = /-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?/y;

function numberKey(text: string): string {
  if (!/[.eE]/.test(text)) {
    const digits = text.startsWith('-') ? text.length - 1 : text.length;
    if (digits > PYTHON_MAX_INT_DIGITS) {
      throw new RangeError(`integer of ${digits} digits exceeds Python's int string limit`);
    }
    return `n${BigInt(text).toString()}`;
  }
  const v = Number(text);
  return Number.isInteger(v) ? `n${BigInt(v).toString()}` : `f${v}`;
}

/**
 * The equality key of a data text that is already in `json.dumps` form (the output of
 * `pythonJsonDumps`). Throws RangeError for an integer Python's json.loads refuses (too many
 * digits).
 */
export function pythonDataKey(dumped: string): string {
  let i = 0;
  const s = dumped;
  const skip = () => {
    while (s[i] === ' ') i++;
  };
  const value = (): string => {
    skip();
    const c = s[i];
    if (c === '"') {
      STRING_TOKEN.lastIndex = i;
      const m = STRING_TOKEN.exec(s);
      if (m === null) throw new SyntaxError(`bad string at ${i}`);
      i += m[0].length;
      return `s${m[0]}`;
    }
    if (c === '[') {
      i++;
      const items: string[] = [];
      skip();
      if (s[i] === ']') {
        i++;
        return '[]';
      }
      for (;;) {
        items.push(value());
        skip();
        if (s[i++] === ']') return `[${items.join(',')}]`;
      }
    }
    if (c === '{') {
      i++;
      const entries: [string, string][] = [];
      skip();
      if (s[i] === '}') {
        i++;
        return '{}';
      }
      for (;;) {
        const k = value();
        skip();
        i++; // ':'
        entries.push([k, value()]);
        skip();
        if (s[i++] === '}') break;
      }
      entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      return `{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`;
    }
    for (const [lit, key] of [
      ['true', 'n1'],
      ['false', 'n0'],
      ['null', 'null'],
    ] as const) {
      if (s.startsWith(lit, i)) {
        i += lit.length;
        return key;
      }
    }
    NUMBER_TOKEN.lastIndex = i;
    const m = NUMBER_TOKEN.exec(s);
    if (m === null) throw new SyntaxError(`unexpected input at ${i}`);
    i += m[0].length;
    return numberKey(m[0]);
  };
  const key = value();
  skip();
  if (i !== s.length) throw new SyntaxError(`trailing input at ${i}`);
  return key;
}
