/**
 * The redundant-Hat test infrastructure (event-cluster.ts) against the monitor double
 * (monitor-peer.ts): registration as hat-event servers do it, exactly one server operational,
 * failover on kill, catch-up on revive, events shared with equal ids, and hat.event.component's
 * server choice (createMonitorHatConnector) following it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { firstValueFrom, map, filter as rxFilter, take, toArray } from 'rxjs';
import { connect } from '../../src/hat/eventer/client.js';
import type { Event, EventerClient, EventType, Status } from '../../src/hat/eventer/common.js';
import { jsonPayload } from '../../src/hat/eventer/common.js';
import {
  createMonitorHatConnector,
  selectEventServer,
} from '../../src/hat/eventer/monitor-connector.js';
import { type ComponentInfo, isActive } from '../../src/hat/monitor/common.js';
import { MonitorComponent } from '../../src/hat/monitor/component.js';
import { type EventCluster, type EventClusterOptions, startEventCluster } from './event-cluster.js';
import { startHatPeer } from './hat-peer.js';
import { type MonitorPeer, startMonitorPeer } from './monitor-peer.js';

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const FAST_COMPONENT = { reconnectMinDelayMs: 20, reconnectMaxDelayMs: 100 };

/** A monitor double (BLESS_ONE for `event`) and a cluster registered with it. */
async function withCluster(
  options: Partial<EventClusterOptions>,
  run: (monitor: MonitorPeer, cluster: EventCluster, clients: EventerClient[]) => Promise<void>,
): Promise<void> {
  const monitor = await startMonitorPeer({
    defaultAlgorithm: 'BLESS_ONE',
    groupAlgorithms: { event: 'BLESS_ONE', aimm: 'BLESS_ONE' },
  });
  const clients: EventerClient[] = [];
  let cluster: EventCluster | null = null;
  try {
    cluster = await startEventCluster({
      monitor: { host: monitor.host, port: monitor.port },
      group: 'event',
      count: 2,
      engineEvents: false,
      flushDelayMs: 10,
      component: FAST_COMPONENT,
      ...options,
    });
    await run(monitor, cluster, clients);
  } finally {
    for (const c of clients) await c.close();
    await cluster?.close();
    await monitor.close();
  }
}

async function client(
  cluster: EventCluster,
  i: number,
  clients: EventerClient[],
  subscriptions: EventType[] = [],
): Promise<EventerClient> {
  const s = cluster.servers[i];
  assert.ok(s !== undefined);
  const c = await connect(s.address, { clientName: `test/${i}`, subscriptions, pingDelay: 0 });
  clients.push(c);
  return c;
}

const idsOf = (events: readonly Event[]) =>
  events.map((e) => `${e.id.server}/${e.id.session}/${e.id.instance}`);

const eventGroup = (cs: ComponentInfo[]) => cs.filter((c) => c.group === 'event');

function registration(events: number[], tag: string) {
  return events.map((n) => ({
    type: ['cluster', tag, String(n)],
    sourceTimestamp: null,
    payload: jsonPayload({ n }),
  }));
}

describe('event cluster (with the monitor double)', { timeout: 60_000 }, () => {
  test('servers register as hat-event servers do; exactly one is operational, the active one', async () => {
    await withCluster({ serverToken: 'tok' }, async (monitor, cluster) => {
      const op = await cluster.waitForOperational();
      const components = await monitor.waitFor(
        (cs) => eventGroup(cs).length === 2 && eventGroup(cs).some(isActive),
      );
      for (const s of cluster.servers) {
        const info = components.find((c) => c.name === `event${s.serverId}`);
        assert.ok(info !== undefined, `event${s.serverId} registered`);
        assert.equal(info.group, 'event');
        // The monitor re-encodes with json.dumps: key order and layout of the real server's data.
        assert.equal(
          info.data,
          `{"server_id": ${s.serverId}, "eventer_server": {"host": "127.0.0.1", "port": ${s.address.port}}, "server_token": "tok"}`,
        );
        assert.equal(info.blessingRes.ready, true, 'ready at once');
      }
      assert.deepEqual(cluster.operational(), [op]);
      const active = eventGroup(components).filter(isActive);
      assert.deepEqual(
        active.map((c) => c.name),
        [cluster.servers[op]?.name],
      );
      const other = cluster.servers[1 - op];
      assert.equal(other?.status, 'standby');
      const selected = selectEventServer(components, 'event', 'tok');
      assert.equal(
        selected.kind === 'server' && selected.server.address.port,
        cluster.servers[op]?.address.port,
      );
    });
  });

  test('events registered on one are in the other with the same ids, notified as synced events', async () => {
    await withCluster({}, async (_monitor, cluster, clients) => {
      const op = await cluster.waitForOperational();
      const standby = 1 - op;
      const writer = await client(cluster, op, clients);
      const watcher = await client(cluster, standby, clients, [['cluster', '*']]);
      const notified = firstValueFrom(
        watcher.events$.pipe(
          map((batch) => batch.filter((e) => e.type[1] === 'a')),
          rxFilter((batch) => batch.length > 0),
        ),
      );
      const registered = await writer.register(registration([1, 2], 'a'));
      assert.ok(registered !== null && registered.length === 2);
      assert.ok(registered.every((e) => e.id.server === cluster.servers[op]?.serverId));
      const latest = await watcher.query({ kind: 'latest', eventTypes: [['cluster', 'a', '*']] });
      assert.deepEqual(idsOf(latest.events), idsOf(registered));
      assert.deepEqual(latest.events, registered, 'stored verbatim, timestamps included');
      assert.deepEqual(idsOf(await notified), idsOf(registered), 'the standby notifies them');
      // Server queries by the origin's id see them too (what a syncing server asks for).
      const byServer = await watcher.query({
        kind: 'server',
        serverId: cluster.servers[op]?.serverId ?? 0,
        persisted: false,
        maxResults: null,
        lastEventId: null,
      });
      assert.deepEqual(
        idsOf(byServer.events.filter((e) => e.type[0] === 'cluster')),
        idsOf(registered),
      );
    });
  });

  test('kill the operational server: the other becomes operational; revive: it catches up, standby', async () => {
    await withCluster({}, async (monitor, cluster, clients) => {
      const first = await cluster.waitForOperational();
      const second = 1 - first;
      const c1 = await client(cluster, first, clients);
      const statuses: Promise<Status[]> = firstValueFrom(c1.status$.pipe(toArray()));
      const before = await c1.register(registration([1], 'k'));
      assert.ok(before !== null);

      await cluster.kill(first);
      assert.deepEqual(await statuses, ['stopping', 'standby'], 'clients hear stopping, standby');
      await c1.closed;
      assert.equal(await cluster.waitForOperational({ except: first }), second);
      assert.equal(cluster.servers[first]?.alive, false);

      const c2 = await client(cluster, second, clients);
      assert.equal(c2.status, 'operational');
      const after = await c2.register(registration([2], 'k'));
      assert.ok(after !== null);
      const seen = await c2.query({ kind: 'latest', eventTypes: [['cluster', 'k', '*']] });
      assert.deepEqual(
        idsOf(seen.events),
        idsOf([...before, ...after]),
        'the first one synced before',
      );

      await cluster.revive(first);
      // Registered again: ready, not blessed; BLESS_ONE keeps the holder.
      await monitor.waitFor((cs) =>
        cs.some(
          (c) => c.name === cluster.servers[first]?.name && c.blessingRes.ready && !isActive(c),
        ),
      );
      assert.equal(await cluster.waitForOperational(), second);
      const c3 = await client(cluster, first, clients);
      assert.equal(c3.status, 'standby');
      const caughtUp = await c3.query({ kind: 'latest', eventTypes: [['cluster', 'k', '*']] });
      assert.deepEqual(idsOf(caughtUp.events), idsOf([...before, ...after]));
      assert.deepEqual(caughtUp.events, [...before, ...after]);

      // And back: kill the second, the revived first takes over.
      await cluster.kill(second);
      assert.equal(await cluster.waitForOperational({ except: second }), first);
    });
  });

  test('three servers: one operational; killing it hands over to exactly one other', async () => {
    await withCluster({ count: 3 }, async (_monitor, cluster) => {
      const op = await cluster.waitForOperational();
      await cluster.kill(op);
      const next = await cluster.waitForOperational({ except: op });
      assert.notEqual(next, op);
      assert.equal(cluster.operational().length, 1);
    });
  });

  test('createMonitorHatConnector follows the cluster through a failover', async () => {
    await withCluster({}, async (monitor, cluster, clients) => {
      const first = await cluster.waitForOperational();
      const observer = new MonitorComponent({
        address: { host: monitor.host, port: monitor.port },
        name: 'aimm-store',
        group: 'aimm',
        runner: { start: async () => {}, stop: async () => {} },
        ...FAST_COMPONENT,
      });
      observer.start();
      const connector = createMonitorHatConnector({
        components$: observer.state$.pipe(map((s) => s.server?.components ?? null)),
        serverGroup: 'event',
        clientName: 'aimm',
        connectTimeout: 5000,
        pingDelay: 0,
      });
      try {
        const a = await connector.connect({ subscriptions: [['cluster', '*']], nameSuffix: 'x' });
        clients.push(a);
        assert.equal(a.status, 'operational');
        assert.deepEqual(
          cluster.servers[first]?.peer.clients().map((c) => [c.clientName, c.serverId]),
          [['aimm/x', cluster.servers[first]?.serverId]],
        );
        const killedId = cluster.servers[first]?.serverId;
        await cluster.kill(first);
        await a.closed;
        // connect() dials whatever is selected now: wait until the monitor's news of the kill
        // arrived (else it would dial the dead server and fail at once).
        await until(() => connector.current?.serverId !== killedId, 'the selection to move on');
        const b = await connector.connect({ subscriptions: [['cluster', '*']], nameSuffix: 'x' });
        clients.push(b);
        const second = 1 - first;
        assert.equal(await cluster.waitForOperational({ except: first }), second);
        assert.deepEqual(
          cluster.servers[second]?.peer.clients().find((c) => c.clientName === 'aimm/x')?.serverId,
          cluster.servers[second]?.serverId,
        );
        // The new server's events reach the client (serverId = its own server id).
        const got = firstValueFrom(b.events$.pipe(take(1)));
        cluster.servers[second]?.peer.register(registration([3], 'c'));
        assert.deepEqual(
          (await got).map((e) => e.type.join('/')),
          ['cluster/c/3'],
        );
      } finally {
        await connector.close();
        await observer.close();
      }
    });
  });
});

describe('HatPeer.importEvents and onRegistered (what the cluster is built on)', () => {
  test('verbatim, known ids skipped, notified (persisted after the flush), newer latest kept', async () => {
    const a = await startHatPeer({ serverId: 1, engineEvents: false, flushDelayMs: 10 });
    const b = await startHatPeer({ serverId: 2, engineEvents: false, flushDelayMs: 10 });
    const clients: EventerClient[] = [];
    try {
      const registeredA: Event[][] = [];
      const registeredB: Event[][] = [];
      const off = a.onRegistered((e) => registeredA.push([...e]));
      b.onRegistered((e) => registeredB.push([...e]));
      const address = { host: b.host, port: b.port };
      const live = await connect(address, { clientName: 'live', subscriptions: [['x', '*']] });
      const persisted = await connect(address, {
        clientName: 'persisted',
        subscriptions: [['x', '*']],
        persisted: true,
      });
      const own = await connect(address, {
        clientName: 'own',
        subscriptions: [['x', '*']],
        serverId: 2,
      });
      clients.push(live, persisted, own);
      const liveGot = firstValueFrom(live.events$, { defaultValue: [] });
      const persistedGot = firstValueFrom(persisted.events$, { defaultValue: [] });
      const ownGot = firstValueFrom(own.events$.pipe(take(1), toArray()), {
        defaultValue: [],
      });

      const older = a.register(registration([1], 'x').map((e) => ({ ...e, type: ['x', '1'] })));
      const newer = a.register(registration([2], 'x').map((e) => ({ ...e, type: ['x', '1'] })));
      assert.deepEqual(registeredA, [older, newer]);
      off();
      a.register(registration([3], 'y'));
      assert.equal(registeredA.length, 2, 'unsubscribed');

      registeredB.length = 0; // b's own eventer CONNECTED events
      assert.deepEqual(b.importEvents(newer), newer);
      assert.deepEqual(b.importEvents([...newer, ...older]), older, 'known ids are skipped');
      assert.deepEqual(registeredB, [], 'imports are not reported as registered');
      assert.deepEqual(await liveGot, newer);
      assert.deepEqual(await persistedGot, newer, 'persisted subscribers after the flush');
      const latest = await live.query({ kind: 'latest', eventTypes: [['x', '*']] });
      assert.deepEqual(latest.events, newer, 'the older import does not replace the newer latest');
      assert.deepEqual(
        b.events.filter((e) => e.id.server === 1).map((e) => e.id),
        [...newer, ...older].map((e) => e.id),
      );
      // Registers under server id 1 continue after the imported sessions.
      const next = b.register(registration([4], 'z'), { serverId: 1 });
      assert.equal(
        next[0]?.id.session,
        Math.max(...[...older, ...newer].map((e) => e.id.session)) + 1,
      );
      // A client filtering on server id 2 gets nothing of server 1's.
      for (const c of clients) await c.close();
      assert.deepEqual(await ownGot, []);
    } finally {
      for (const c of clients) await c.close();
      await a.close();
      await b.close();
    }
  });
});
