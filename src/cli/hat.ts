/**
 * `aimm-store hat ...`: the Hat operator's tool, talking to a Hat event server directly.
 *
 *   hat status   [--address ADDR]
 *   hat register [--address ADDR] --type a/b/c [--type ...] [--json TEXT | --binary-type T --file F]
 *                [--source-time TIME] [--no-response]
 *   hat query    [--address ADDR] latest [TYPE...]
 *   hat query    [--address ADDR] timeseries [TYPE...] [--from TIME] [--to TIME]
 *                [--source-from TIME] [--source-to TIME] [--by-source] [--max N] [--asc]
 *   hat query    [--address ADDR] server --server-id N [--persisted] [--max N]
 *   hat watch    [--address ADDR] [--persisted] TYPE...
 *   hat monitor  [--address HOST[:PORT]] [--watch] [--json]     (a hat-monitor, port 23010)
 *
 * Common options: --token T (client token), --client-name NAME, --timeout MS (connect, 5000).
 * Events print one JSON line each (see hat-format.ts); queries print every page. `monitor`
 * observes the monitor's component port without registering (no MsgClient) and prints its state
 * (hat-format.ts). Exit codes: 0 ok, 1 failure (unreachable, refused, register failure,
 * connection lost), 2 usage.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Address } from '../hat/chatter/connect.js';
import { connect } from '../hat/eventer/client.js';
import type {
  EventerClient,
  EventPayload,
  EventType,
  QueryServerParams,
  QueryTimeseriesParams,
  RegisterEvent,
  Timestamp,
} from '../hat/eventer/common.js';
import { serverQuery, timeseriesQuery } from '../hat/eventer/common.js';
import { checkJsonText, JsonTextError } from '../hat/eventer/json.js';
import { ownInfo, type ServerMsg } from '../hat/monitor/common.js';
import { connectMonitor, MonitorCloseError } from '../hat/monitor/connection.js';
import {
  DEFAULT_HAT_ADDRESS,
  DEFAULT_MONITOR_ADDRESS,
  formatEventLine,
  formatMonitorJson,
  formatMonitorState,
  parseAddress,
  parseCount,
  parseEventType,
  parseMonitorAddress,
  parseTime,
  UsageError,
} from './hat-format.js';

const USAGE = `usage: aimm-store hat <command> [options]   (ADDR is host:port, default 127.0.0.1:23012)

  hat status [--address ADDR]
  hat register [--address ADDR] --type a/b/c [--type ...] [--json TEXT | --binary-type T --file F|-]
               [--source-time TIME] [--no-response]
  hat query [--address ADDR] latest [TYPE...]
  hat query [--address ADDR] timeseries [TYPE...] [--from TIME] [--to TIME] [--max N] [--asc]
            [--source-from TIME] [--source-to TIME] [--by-source]
  hat query [--address ADDR] server --server-id N [--persisted] [--max N]
  hat watch [--address ADDR] [--persisted] TYPE...
  hat monitor [--address HOST[:PORT]] [--watch] [--json]
            a hat-monitor's state (component port, default 127.0.0.1:23010); --watch: again on
            every change until interrupted; --json: each MsgServer as one JSON line

  common: --token T, --client-name NAME, --timeout MS (monitor: --timeout only)
  TYPE: /-joined segments, '?' matches one segment, '*' (last only) any number.
  TIME: ISO 8601 (UTC unless a zone is given, up to microseconds) or epoch seconds.
  --max N is the page size; every page is printed.
`;

const COMMON = {
  address: { type: 'string' },
  token: { type: 'string' },
  'client-name': { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Common {
  address: Address;
  token: string | null;
  clientName: string;
  timeout: number;
}

function timeoutOf(values: Record<string, unknown>): number {
  return values.timeout === undefined
    ? 5000
    : Math.max(1, parseCount('--timeout', values.timeout as string));
}

function common(values: Record<string, unknown>): Common {
  return {
    address:
      values.address === undefined ? DEFAULT_HAT_ADDRESS : parseAddress(values.address as string),
    token: (values.token as string | undefined) ?? null,
    clientName: (values['client-name'] as string | undefined) ?? 'aimm-store/hat-cli',
    timeout: timeoutOf(values),
  };
}

function open(
  c: Common,
  subscriptions: EventType[] = [],
  persisted = false,
): Promise<EventerClient> {
  return connect(c.address, {
    clientName: c.clientName,
    clientToken: c.token,
    subscriptions,
    persisted,
    connectTimeout: c.timeout,
  });
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function parse<
  T extends Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>,
>(argv: string[], options: T) {
  try {
    return parseArgs({
      args: argv,
      options: { ...COMMON, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function status(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {});
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const client = await open(common(values));
  out(JSON.stringify({ status: client.status }));
  await client.close();
  return 0;
}

function readPayload(values: Record<string, unknown>): EventPayload | null {
  const json = values.json as string | undefined;
  const binaryType = values['binary-type'] as string | undefined;
  const file = values.file as string | undefined;
  if (json !== undefined && (binaryType !== undefined || file !== undefined)) {
    throw new UsageError('--json and --binary-type/--file are exclusive');
  }
  if (json !== undefined) {
    try {
      checkJsonText(json);
    } catch (err) {
      if (err instanceof JsonTextError) throw new UsageError(err.message);
      throw err;
    }
    return { kind: 'json', text: json };
  }
  if (binaryType === undefined && file === undefined) return null;
  if (binaryType === undefined || file === undefined) {
    throw new UsageError('--binary-type and --file go together');
  }
  const data = readFileSync(file === '-' ? 0 : file);
  return { kind: 'binary', type: binaryType, data };
}

async function register(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    type: { type: 'string', multiple: true },
    json: { type: 'string' },
    'binary-type': { type: 'string' },
    file: { type: 'string' },
    'source-time': { type: 'string' },
    'no-response': { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const types = (values.type as string[] | undefined) ?? [];
  if (types.length === 0) throw new UsageError('register needs --type');
  const payload = readPayload(values);
  const sourceTimestamp: Timestamp | null =
    values['source-time'] === undefined ? null : parseTime(values['source-time'] as string);
  const events: RegisterEvent[] = types.map((t) => ({
    type: parseEventType(t),
    sourceTimestamp,
    payload,
  }));
  const c = common(values);
  const client = await open(c);
  try {
    if (values['no-response']) {
      await client.registerNoResponse(events);
      return 0;
    }
    const created = await client.register(events);
    if (created === null) {
      process.stderr.write(`aimm-store hat: register failed (the server is ${client.status})\n`);
      return 1;
    }
    for (const e of created) out(formatEventLine(e));
    return 0;
  } finally {
    await client.close();
  }
}

/** The options of `hat query`; each applies to some of its kinds only. */
const QUERY_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  'source-from': { type: 'string' },
  'source-to': { type: 'string' },
  'by-source': { type: 'boolean' },
  max: { type: 'string' },
  asc: { type: 'boolean' },
  'server-id': { type: 'string' },
  persisted: { type: 'boolean' },
} as const;

async function query(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, QUERY_OPTIONS);
  const [kind, ...rest] = positionals;
  const types = rest.map(parseEventType);
  const max = values.max === undefined ? null : parseCount('--max', values.max as string);
  const only = (allowed: (keyof typeof QUERY_OPTIONS)[]) => {
    for (const k of Object.keys(QUERY_OPTIONS) as (keyof typeof QUERY_OPTIONS)[]) {
      if (values[k] !== undefined && !allowed.includes(k)) {
        throw new UsageError(`--${k} does not apply to 'query ${kind}'`);
      }
    }
  };
  let paged: QueryTimeseriesParams | QueryServerParams | null = null;
  if (kind === 'latest') {
    only([]);
  } else if (kind === 'timeseries') {
    only(['from', 'to', 'source-from', 'source-to', 'by-source', 'max', 'asc']);
    const time = (k: string) =>
      values[k as keyof typeof values] === undefined
        ? null
        : parseTime(values[k as keyof typeof values] as string);
    paged = timeseriesQuery({
      eventTypes: types.length === 0 ? null : types,
      tFrom: time('from'),
      tTo: time('to'),
      sourceTFrom: time('source-from'),
      sourceTTo: time('source-to'),
      order: values.asc ? 'ascending' : 'descending',
      orderBy: values['by-source'] ? 'sourceTimestamp' : 'timestamp',
      maxResults: max,
    });
  } else if (kind === 'server') {
    only(['server-id', 'persisted', 'max']);
    if (rest.length > 0) throw new UsageError('query server takes no event types');
    if (values['server-id'] === undefined) throw new UsageError('query server needs --server-id');
    paged = serverQuery(parseCount('--server-id', values['server-id'] as string), {
      persisted: Boolean(values.persisted),
      maxResults: max,
    });
  } else {
    throw new UsageError(
      kind === undefined ? 'query needs latest, timeseries or server' : `unknown query '${kind}'`,
    );
  }
  const client = await open(common(values));
  try {
    if (paged === null) {
      const result = await client.query({
        kind: 'latest',
        eventTypes: types.length === 0 ? null : types,
      });
      for (const e of result.events) out(formatEventLine(e));
    } else {
      for await (const page of client.queryPages(paged))
        for (const e of page) out(formatEventLine(e));
    }
    return 0;
  } finally {
    await client.close();
  }
}

async function watch(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { persisted: { type: 'boolean' } });
  if (positionals.length === 0) throw new UsageError('watch needs at least one event type');
  const client = await open(
    common(values),
    positionals.map(parseEventType),
    Boolean(values.persisted),
  );
  let stopped = false;
  const stop = () => {
    stopped = true;
    void client.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    client.events$.subscribe((events) => {
      for (const e of events) out(formatEventLine(e));
    });
    const reason = await client.closed;
    if (stopped) return 0;
    process.stderr.write(`aimm-store hat: connection lost: ${reason?.message ?? 'closed'}\n`);
    return 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function monitor(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    watch: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  for (const k of ['token', 'client-name'] as const) {
    if (values[k] !== undefined) throw new UsageError(`--${k} does not apply to 'hat monitor'`);
  }
  const address =
    values.address === undefined
      ? DEFAULT_MONITOR_ADDRESS
      : parseMonitorAddress(values.address as string);
  const timeout = timeoutOf(values);
  const json = Boolean(values.json);
  const watching = Boolean(values.watch);

  // No MsgClient is ever sent: the monitor lists us as an unnamed component (group null), which
  // the output hides; observing blesses or changes nothing.
  const conn = await connectMonitor(address, { connectTimeout: timeout });
  const where = conn.address;
  let stopped = false;
  const stop = () => {
    stopped = true;
    void conn.close();
  };
  if (watching) {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  let last: string | null = null;
  const show = (msg: ServerMsg) => {
    const text = json ? formatMonitorJson(msg) : formatMonitorState(msg, where).join('\n');
    if (text === last) return;
    last = text;
    out(json || !watching ? text : `${new Date().toISOString()} ${text}`);
  };
  let timer: NodeJS.Timeout | undefined;
  // One subscription from the start, so that no state is skipped. The very first MsgServer is
  // often stale and lacks our own entry (monitor-vectors README §3): the first state shown is the
  // first one that lists us; if none does within `timeout`, the latest one (with a warning).
  const first = new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => {
      const latest = conn.state;
      if (latest === null) {
        reject(
          new Error(
            `no state from the monitor at ${where} within ${timeout} ms (is it a hat-monitor component port?)`,
          ),
        );
        return;
      }
      process.stderr.write(
        `aimm-store hat monitor: warning: the monitor at ${where} did not list this observer within ${timeout} ms; showing the latest state received\n`,
      );
      show(latest);
      resolve();
    }, timeout);
    const sub = conn.state$.subscribe({
      next: (msg) => {
        if (last === null && ownInfo(msg) === undefined) return;
        clearTimeout(timer);
        if (last === null || watching) show(msg);
        resolve();
      },
      complete: () => {
        clearTimeout(timer);
        void conn.closed.then((reason) =>
          reject(
            reason instanceof MonitorCloseError || reason === null
              ? (reason ?? new Error('closed'))
              : new Error(
                  `the connection to the monitor at ${where} closed before its state arrived: ${reason.message}`,
                ),
          ),
        );
      },
    });
    void conn.closed.then(() => sub.unsubscribe());
  });
  try {
    try {
      await first;
    } catch (err) {
      if (stopped) return 0;
      throw err;
    }
    if (!watching) return 0;
    const reason = await conn.closed;
    if (stopped) return 0;
    process.stderr.write(
      `aimm-store hat monitor: ${
        reason instanceof MonitorCloseError
          ? reason.message
          : `connection to the monitor at ${where} lost: ${reason?.message ?? 'closed'}`
      }\n`,
    );
    return 1;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await conn.close();
  }
}

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  status,
  register,
  query,
  watch,
  monitor,
};

export async function run(_command: string, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (
    sub === undefined ||
    sub === 'help' ||
    sub === '--help' ||
    sub === '-h' ||
    rest.includes('--help') ||
    rest.includes('-h')
  ) {
    process.stdout.write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  const command = commands[sub];
  if (command === undefined) {
    process.stderr.write(`aimm-store hat: unknown command '${sub}'\n${USAGE}`);
    return 2;
  }
  // A closed stdout (e.g. piped into `head`) ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });
  try {
    return await command(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `aimm-store hat ${sub}: ${err.message}\n(see 'aimm-store hat --help')\n`,
      );
      return 2;
    }
    process.stderr.write(
      `aimm-store hat ${sub}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return 1;
  }
}
