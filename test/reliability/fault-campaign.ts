/**
 * The Hat fault campaign: `aimm-store serve` with the event backend runs against the Hat test peer
 * hosted in this process while writers (Juggler clients here, and a second writer registering
 * AIMM-format events straight into Hat on the same prefix) keep writing, and the peer misbehaves:
 *
 * - `stop-start`: the peer stops (connections closed, port closed) and starts again;
 * - `cut`: connections are cut after a random number of further bytes (mid-frame), or at once;
 * - `stall`: the peer stops reading and answering (pings too) until the daemon's ping timeout;
 * - `reset`: Hat's store is wiped while it is down (event ids restart), as after a database loss;
 * - `reset-live`: the store is wiped under live connections (a real server cannot do that, but
 *   the daemon must not trust event ids blindly);
 * - `fail-registers`: the peer answers `failure` to every register request;
 * - `standby`: the server leaves `operational` and comes back;
 * - `second-writer`: a burst of another writer's creates, updates and tombstones on the prefix.
 *
 * Asserted, episode after episode:
 * - every client request is answered (never left hanging, never a dropped Juggler connection):
 *   acknowledged, or failed with a clear error text of a known kind;
 * - readiness and metrics tell the truth: while Hat is away `/readyz` turns 503, `ready` and
 *   `backend_connected` 0; once it is back, 200 and 1; connection, failure and rebuild counters move;
 * - after each episode, once quiet, the daemon serves exactly the models Hat holds (live ids, type,
 *   bytes, revision = the number of events of that id) — nothing acknowledged is lost;
 * - every acknowledged write is in Hat: an event of that id with exactly its bytes (or a tombstone)
 *   at the position its revision says (positions are not asserted for writes acknowledged while a
 *   store reset was being discovered: Hat forgot their predecessors);
 * - ids the daemon hands out are never reused, also not after Hat's store was reset;
 * - the daemon never exits, never logs `fatal`, never prints a secret.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RequestFailedError } from '../../src/client/connection.js';
import { JugglerClient } from '../../src/client/index.js';
import type { Event } from '../../src/hat/eventer/common.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import {
  Daemon,
  deadline,
  httpGet,
  makeUser,
  metricSum,
  metricValue,
  Rng,
  randomSeed,
  sha256,
  sleep,
  tempDir,
  until,
  writeConfig,
} from './support.js';

export type Fault =
  | 'stop-start'
  | 'cut'
  | 'stall'
  | 'reset'
  | 'reset-live'
  | 'fail-registers'
  | 'standby'
  | 'second-writer';

export const FAULTS: readonly Fault[] = [
  'stop-start',
  'cut',
  'stall',
  'reset',
  'reset-live',
  'fail-registers',
  'standby',
  'second-writer',
];

export interface FaultCampaignOptions {
  episodes: number;
  snapshot?: boolean;
  seed?: number;
  /** Faults in turn (default) or drawn at random. */
  schedule?: 'round-robin' | 'random';
  faults?: readonly Fault[];
  workers?: number;
  log?: (line: string) => void;
  stopOnViolation?: boolean;
}

export interface FaultSummary {
  variant: string;
  seed: number;
  episodes: number;
  faults: Record<string, number>;
  requests: number;
  acked: number;
  failed: number;
  /** Error responses by kind (first words of the text). */
  errors: Record<string, number>;
  acksVerified: number;
  checks: number;
  modelsCompared: number;
  remoteEvents: number;
  outagesSeen: number;
  reconnects: number;
  rebuilds: number;
  violations: string[];
  problems: string[];
  durationMs: number;
}

const PREFIX = ['aimm', 'model'];
const TOKEN = 'fault-campaign-token-93ab';
const NAME = 'faults';

/** Error texts a client may get while Hat misbehaves (anything else is a problem). */
const EXPECTED_ERRORS: [RegExp, string][] = [
  [/Hat event server unavailable|Hat event server unreachable/, 'unavailable'],
  [/refused the register request/, 'register refused'],
  [/may or may not be stored/, 'outcome unknown'],
  [/event ids went backwards/, 'ids went backwards'],
  [/is at revision \d+, expected \d+/, 'revision conflict'],
  [/^model \d+ not found$/, 'not found'],
];

interface Ack {
  op: 'create' | 'update' | 'delete';
  id: number;
  revision: number;
  sha256: string | null;
  modelType: string | null;
  /** Acknowledged while a reset of Hat's store may not have been discovered yet. */
  positionUnknown: boolean;
}

/** The clients writing through the daemon, each write a compare-and-set on what they know. */
class Writers {
  private running = false;
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private loops: Promise<void>[] = [];
  /** Live ids this side created, with the revision last seen (null: refresh before use). */
  readonly live = new Map<number, number | null>();
  private readonly busy = new Set<number>();
  readonly acks: Ack[] = [];
  readonly createdIds = new Set<number>();
  maxCreated = 0;
  maxCreatedBeforeReset = 0;
  positionUnknown = false;
  seq = 0;

  constructor(
    private readonly clients: JugglerClient[],
    private readonly rng: Rng,
    private readonly summary: FaultSummary,
    private readonly perClient: number,
    private readonly target = 80,
  ) {}

  start(): void {
    this.running = true;
    this.loops = [];
    for (const c of this.clients)
      for (let i = 0; i < this.perClient; i++) this.loops.push(this.loop(c));
  }

  /** Stops starting writes; resolves once every write in flight is settled. */
  async pause(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(client: JugglerClient): Promise<void> {
    while (this.running) {
      this.active++;
      try {
        await this.one(client);
      } finally {
        this.active--;
        if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  private pickId(): number | null {
    const free = [...this.live.keys()].filter((id) => !this.busy.has(id));
    return free.length === 0 ? null : this.rng.pick(free);
  }

  private async one(client: JugglerClient): Promise<void> {
    const x = this.rng.next();
    const pCreate =
      this.live.size < this.target / 2 ? 0.6 : this.live.size > this.target ? 0.05 : 0.3;
    const id = x < pCreate ? null : this.pickId();
    const op: Ack['op'] = id === null ? 'create' : x > 0.85 ? 'delete' : 'update';
    if (id !== null) this.busy.add(id);
    const s = ++this.seq;
    const bytes = this.rng.bytes(this.rng.int(16, 3000));
    bytes.writeDoubleLE(s, 0);
    const modelType = this.rng.pick(['fault.Model', 'nn.Ünï', 'a/b']);
    const positionUnknown = this.positionUnknown;
    this.summary.requests++;
    try {
      if (id !== null && this.live.get(id) === null) {
        const meta = await guard(client.getMeta(id));
        this.live.set(id, meta.revision);
      }
      const er = id === null ? undefined : (this.live.get(id) ?? undefined);
      if (op === 'delete') {
        const r = await guard(client.remove(id as number, { expectedRevision: er as number }));
        this.acks.push({
          op,
          id: r.instanceId,
          revision: r.revision,
          sha256: null,
          modelType: null,
          positionUnknown,
        });
        this.live.delete(r.instanceId);
      } else {
        const meta = await guard(
          client.put(
            modelType,
            bytes,
            id === null ? {} : { instanceId: id, expectedRevision: er as number },
          ),
        );
        if (op === 'create') {
          if (this.createdIds.has(meta.instanceId) || meta.instanceId <= this.maxCreatedBeforeReset)
            this.summary.violations.push(`create returned id ${meta.instanceId}, used before`);
          this.createdIds.add(meta.instanceId);
          this.maxCreated = Math.max(this.maxCreated, meta.instanceId);
        }
        if (meta.sha256 !== sha256(bytes))
          this.summary.violations.push(`ack of ${meta.instanceId} reports another sha256`);
        this.acks.push({
          op,
          id: meta.instanceId,
          revision: meta.revision,
          sha256: meta.sha256,
          modelType: meta.modelType,
          positionUnknown,
        });
        this.live.set(meta.instanceId, meta.revision);
      }
      this.summary.acked++;
    } catch (err) {
      this.summary.failed++;
      if (err instanceof RequestFailedError) {
        const text = err.message;
        const kind = EXPECTED_ERRORS.find(([re]) => re.test(text))?.[1];
        if (kind === undefined) this.summary.problems.push(`unexpected error response: ${text}`);
        const k = kind ?? text.slice(0, 40);
        this.summary.errors[k] = (this.summary.errors[k] ?? 0) + 1;
        if (kind === 'not found' && id !== null) this.live.delete(id);
        else if (id !== null) this.live.set(id, null);
        await sleep(this.rng.int(2, 20)); // a client backs off a little after an error
      } else {
        this.summary.problems.push(
          `request ${op} ${id ?? ''} failed without a response: ${(err as Error).message}`,
        );
        this.running = false;
      }
    } finally {
      if (id !== null) this.busy.delete(id);
    }
  }
}

class HangError extends Error {}

/** A request must settle: a hang guard far above every timeout the daemon is configured with. */
function guard<T>(p: Promise<T>, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HangError(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A second writer on the prefix: AIMM-format events straight into Hat. */
class RemoteWriter {
  private nextId = 2;
  constructor(
    private readonly peer: HatPeer,
    private readonly rng: Rng,
    private readonly writers: Writers,
  ) {}

  /** Registers `n` events: creates of even ids, updates and tombstones of the daemon's models. */
  burst(n: number): number {
    if (this.peer.status !== 'operational') return 0;
    const events = [];
    for (let i = 0; i < n; i++) {
      const x = this.rng.next();
      const theirs = [...this.writers.live.keys()];
      let id: number;
      let payload: { kind: 'json'; text: string } | null;
      const bytes = this.rng.bytes(this.rng.int(8, 400));
      const text = JSON.stringify({ type: 'remote.Model', instance: bytes.toString('base64') });
      if (x < 0.5 || theirs.length === 0) {
        this.nextId += 2;
        id = this.nextId;
        payload = { kind: 'json', text };
      } else {
        id = this.rng.pick(theirs);
        payload = x < 0.9 ? { kind: 'json', text } : null;
      }
      events.push({ type: [...PREFIX, String(id)], sourceTimestamp: null, payload });
    }
    this.peer.register(events);
    return events.length;
  }

  /** After a store reset the second writer's ids continue above what it used. */
  get usedUpTo(): number {
    return this.nextId;
  }
}

interface HatModel {
  revision: number;
  deleted: boolean;
  sha256: string | null;
  modelType: string | null;
  events: Event[];
}

/** The models as Hat holds them: every event of each id, in id order of the events. */
function hatModels(events: readonly Event[]): Map<number, HatModel> {
  const out = new Map<number, HatModel>();
  for (const e of events) {
    if (e.type.length !== PREFIX.length + 1 || e.type[0] !== PREFIX[0] || e.type[1] !== PREFIX[1])
      continue;
    const id = Number(e.type[PREFIX.length]);
    const m = out.get(id) ?? {
      revision: 0,
      deleted: true,
      sha256: null,
      modelType: null,
      events: [],
    };
    m.revision++;
    m.events.push(e);
    const decoded = decodePayload(e);
    m.deleted = decoded === null;
    m.sha256 = decoded?.sha256 ?? null;
    m.modelType = decoded?.modelType ?? null;
    out.set(id, m);
  }
  return out;
}

function decodePayload(e: Event): { sha256: string; modelType: string } | null {
  if (e.payload === null || e.payload.kind !== 'json') return null;
  const v = JSON.parse(e.payload.text) as { type: string; instance: string };
  return { sha256: sha256(Buffer.from(v.instance, 'base64')), modelType: v.type };
}

export async function runFaultCampaign(opts: FaultCampaignOptions): Promise<FaultSummary> {
  const t0 = Date.now();
  const seed = opts.seed ?? randomSeed();
  const rng = new Rng(seed);
  const say = opts.log ?? (() => {});
  const faults = opts.faults ?? FAULTS;
  const stopOnViolation = opts.stopOnViolation ?? true;
  const summary: FaultSummary = {
    variant: opts.snapshot === true ? 'event+snapshot' : 'event',
    seed,
    episodes: 0,
    faults: {},
    requests: 0,
    acked: 0,
    failed: 0,
    errors: {},
    acksVerified: 0,
    checks: 0,
    modelsCompared: 0,
    remoteEvents: 0,
    outagesSeen: 0,
    reconnects: 0,
    rebuilds: 0,
    violations: [],
    problems: [],
    durationMs: 0,
  };
  const user = makeUser(rng);
  const { dir, cleanup } = tempDir('aimm-faults-');
  const tokenFile = join(dir, 'hat-token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const peer = await startHatPeer({ serverToken: TOKEN, flushDelayMs: 5 });
  const config = writeConfig(join(dir, 'config.json'), {
    name: NAME,
    backend: {
      module: 'aimm-store/backends/event',
      model_prefix: PREFIX,
      id_allocation: { stride: 2, offset: 1 },
      request_timeout_ms: 1500,
      catch_up_page_size: 64,
      reconnect: { min_delay_ms: 20, max_delay_ms: 250 },
      ...(opts.snapshot === true ? { snapshot: { path: join(dir, 'snapshot.db') } } : {}),
    },
    hat: {
      eventer_server: { host: peer.host, port: peer.port },
      client_token_file: tokenFile,
      ping_delay: 0.2,
      ping_timeout: 0.4,
      connect_timeout: 0.6,
    },
    control: [
      {
        module: 'aimm-store/controls/juggler',
        server: { host: '127.0.0.1', port: 0 },
        users: [{ username: user.username, password: user.hash }],
      },
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
    ],
    log: { level: 'info' },
  });
  const daemon = new Daemon(config, { secrets: [TOKEN, user.password, user.hash] });
  const clients: JugglerClient[] = [];
  let finished = false;
  const failed = () =>
    stopOnViolation && (summary.violations.length > 0 || summary.problems.length > 0);
  try {
    const hport = await daemon.port('http');
    const jport = await Promise.race([daemon.port('juggler'), deadline(30_000, null)]);
    if (jport === null || hport === null) throw new Error(`daemon did not start: ${daemon.stderr}`);
    const secrets = [TOKEN, user.password, user.hash];
    const metrics = async () => {
      const text = (await httpGet(hport, '/metrics')).body;
      if (secrets.some((x) => text.includes(x))) summary.violations.push('a secret in /metrics');
      return text;
    };
    const readyz = async () => (await httpGet(hport, '/readyz')).status;
    /** /readyz and the `ready` metric agree, and say `ready`; `connected` per the metric. */
    const readiness = async (): Promise<{ ready: boolean; connected: boolean }> => {
      const a = await readyz();
      const m = await metrics();
      const b = await readyz();
      const ready = metricValue(m, 'aimm_store_ready');
      const connected = metricValue(m, 'aimm_store_backend_connected') === 1;
      if (a === b && (a === 200) !== (ready === 1))
        summary.violations.push(`/readyz says ${a}, the ready metric ${ready}`);
      return { ready: b === 200, connected };
    };
    for (let i = 0; i < 2; i++)
      clients.push(
        await JugglerClient.connect(`ws://127.0.0.1:${jport}/`, {
          username: user.username,
          password: user.password,
          pingDelay: null,
        }),
      );
    for (const c of clients)
      void c.closed.then((why) => {
        if (!finished) summary.problems.push(`a Juggler connection closed: ${why.message}`);
      });
    const writers = new Writers(clients, rng, summary, opts.workers ?? 4);
    const remote = new RemoteWriter(peer, rng, writers);
    let resetAt = 0; // index in peer.events where the current store starts (always 0 after a reset)

    /** Quiet: writes paused, Hat up, the daemon ready; then the daemon must serve what Hat holds. */
    const check = async (what: string) => {
      await writers.pause();
      await until(async () => (await readiness()).ready, `ready after ${what}`, 30_000, 25).catch(
        (err: Error) => summary.violations.push(err.message),
      );
      const hat = () => hatModels(peer.events.slice(resetAt));
      let diff: string[] = [];
      await until(
        async () => {
          diff = await compare(clients[0] as JugglerClient, hat());
          return diff.length === 0;
        },
        `the daemon to serve what Hat holds after ${what}`,
        20_000,
        50,
      ).catch(() =>
        summary.violations.push(
          `after ${what}: daemon and Hat differ: ${diff.slice(0, 5).join('; ')}`,
        ),
      );
      const models = hat();
      summary.modelsCompared += [...models.values()].filter((m) => !m.deleted).length;
      for (const a of writers.acks.splice(0)) {
        const m = models.get(a.id);
        const match = (e: Event) => {
          const d = decodePayload(e);
          return a.op === 'delete'
            ? d === null
            : d !== null && d.sha256 === a.sha256 && d.modelType === a.modelType;
        };
        const at = m?.events[a.revision - 1];
        const ok = a.positionUnknown
          ? (m?.events.some(match) ?? false)
          : at !== undefined && match(at);
        if (!ok)
          summary.violations.push(
            `acknowledged ${a.op} of ${a.id} at revision ${a.revision} is not in Hat${a.positionUnknown ? '' : ' at that position'} (Hat has ${m?.events.length ?? 0} events for it)`,
          );
        else summary.acksVerified++;
      }
      writers.positionUnknown = false;
      // What the writers believe is refreshed from the daemon.
      writers.live.clear();
      for (const meta of await (clients[0] as JugglerClient).list())
        if (meta.instanceId % 2 === 1) writers.live.set(meta.instanceId, meta.revision);
      summary.checks++;
    };

    /** Polls until Hat's absence shows in readiness and metrics (the daemon noticed). */
    const outage = async (what: string) => {
      try {
        await until(
          async () => {
            const r = await readiness();
            return !r.ready && !r.connected;
          },
          `readiness to show the outage (${what})`,
          15_000,
          25,
        );
        summary.outagesSeen++;
      } catch (err) {
        summary.violations.push((err as Error).message);
      }
    };

    await check('start');
    for (let ep = 0; ep < opts.episodes && !failed(); ep++) {
      const fault =
        opts.schedule === 'random' ? rng.pick(faults) : (faults[ep % faults.length] as Fault);
      summary.episodes++;
      summary.faults[fault] = (summary.faults[fault] ?? 0) + 1;
      say(`episode ${ep + 1}: ${fault}`);
      const before = await metrics();
      const hold = () => sleep(rng.int(50, 400));
      writers.start();
      await hold();
      switch (fault) {
        case 'stop-start':
          await peer.stop();
          await outage(fault);
          await hold();
          await peer.start();
          break;
        case 'cut': {
          const afterBytes = rng.chance(0.3) ? 0 : rng.int(1, 20_000);
          peer.cutConnections({ afterBytes });
          await hold();
          const m = await metrics();
          if (
            metricSum(m, 'aimm_store_event_disconnects_total') ===
            metricSum(before, 'aimm_store_event_disconnects_total')
          )
            peer.cutConnections(); // not enough traffic to reach the cut: cut now
          break;
        }
        case 'stall':
          peer.stall(true);
          await outage(fault);
          await hold();
          peer.stall(false);
          break;
        case 'reset': {
          // Quiet first: acknowledgements made before the reset are checked against the old store.
          await check('before reset');
          writers.maxCreatedBeforeReset = Math.max(remote.usedUpTo, writers.maxCreated);
          await peer.stop();
          peer.resetStore();
          resetAt = 0;
          await peer.start();
          writers.start();
          await hold();
          break;
        }
        case 'reset-live': {
          // Not something a real Hat server can do (its store cannot be wiped while it runs), but
          // a daemon must not trust event ids blindly: ids restart under a live connection.
          await check('before reset');
          writers.maxCreatedBeforeReset = Math.max(remote.usedUpTo, writers.maxCreated);
          peer.resetStore();
          writers.positionUnknown = true;
          writers.start();
          await hold();
          break;
        }
        case 'fail-registers':
          peer.failRegisters(true);
          await hold();
          await hold();
          peer.failRegisters(false);
          break;
        case 'standby':
          peer.setStatus('standby');
          await until(
            async () => !(await readiness()).ready,
            'not ready in standby',
            15_000,
            25,
          ).catch((err: Error) => summary.violations.push(err.message));
          await hold();
          peer.setStatus('operational');
          break;
        case 'second-writer':
          for (let i = 0; i < 5; i++) {
            summary.remoteEvents += remote.burst(rng.int(1, 12));
            await sleep(rng.int(0, 60));
          }
          break;
      }
      if (rng.chance(0.5)) summary.remoteEvents += remote.burst(rng.int(1, 4));
      await check(fault);
      const after = await metrics();
      const delta = (name: string, labels = '') =>
        labels === ''
          ? metricSum(after, name) - metricSum(before, name)
          : (metricValue(after, name, labels) ?? 0) - (metricValue(before, name, labels) ?? 0);
      const reconnects = delta('aimm_store_event_connects_total');
      summary.reconnects += reconnects;
      if (['stop-start', 'cut', 'stall', 'reset'].includes(fault) && reconnects < 1)
        summary.violations.push(`${fault}: event_connects_total did not move`);
      if (fault === 'reset' || fault === 'reset-live') {
        const rebuilds = delta('aimm_store_event_recoveries_total', 'mode="rebuild"');
        summary.rebuilds += rebuilds;
        if (rebuilds < 1) summary.violations.push(`${fault}: no rebuild counted`);
      }
      if (fault === 'fail-registers' && (summary.errors['register refused'] ?? 0) > 0) {
        if (delta('aimm_store_event_register_requests_total', 'result="failure"') < 1)
          summary.violations.push('fail-registers: refused register requests not counted');
      }
      for (const p of daemon.problems.splice(0)) summary.problems.push(p);
      if (!daemon.alive) break;
      if ((ep + 1) % 20 === 0) say(progress(summary, t0));
    }
    finished = true;
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    const stopped = await daemon.stop('SIGTERM');
    if (stopped.code !== 0) summary.problems.push(`graceful stop exited ${stopped.code}`);
    for (const p of daemon.problems.splice(0)) summary.problems.push(p);
    if (summary.problems.length > 0 || summary.violations.length > 0)
      summary.problems.push(`daemon's last lines:\n${daemon.recent.slice(-20).join('\n')}`);
    await peer.close();
    cleanup();
  }
  summary.durationMs = Date.now() - t0;
  return summary;
}

function progress(s: FaultSummary, t0: number): string {
  return `faults ${s.variant}: ${s.episodes} episodes, ${s.acked} acked, ${s.failed} failed, ${s.violations.length} violations, ${Math.round((Date.now() - t0) / 1000)} s`;
}

/** Differences between what the daemon serves and what Hat holds (empty when equal). */
async function compare(client: JugglerClient, hat: Map<number, HatModel>): Promise<string[]> {
  const diff: string[] = [];
  const served = new Map((await client.list()).map((m) => [m.instanceId, m]));
  for (const [id, m] of hat) {
    const s = served.get(id);
    served.delete(id);
    if (m.deleted) {
      if (s !== undefined) diff.push(`${id}: deleted in Hat, served at revision ${s.revision}`);
      continue;
    }
    if (s === undefined) {
      diff.push(`${id}: in Hat at revision ${m.revision}, not served`);
      continue;
    }
    if (s.revision !== m.revision || s.sha256 !== m.sha256 || s.modelType !== m.modelType)
      diff.push(
        `${id}: Hat has revision ${m.revision} ${m.sha256?.slice(0, 8)} ${m.modelType}, served ${s.revision} ${s.sha256.slice(0, 8)} ${s.modelType}`,
      );
    else {
      const full = await client.get(id);
      if (sha256(full.instance) !== m.sha256) diff.push(`${id}: bytes differ from their sha256`);
    }
  }
  for (const id of served.keys()) diff.push(`${id}: served, not in Hat`);
  return diff;
}
