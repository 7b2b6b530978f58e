/**
 * A redundant Hat end to end: the monitor double, two event-server doubles registered with it, and
 * two aimm-store daemons (child processes) in one monitor group. Exactly one daemon is active and
 * writes; the standby follows, serves reads and refuses writes naming the active one; kill -9 of the
 * active during writes hands over without losing or duplicating an acknowledged write; the active
 * event server's death moves the daemons to the other; a monitor restart settles the roles again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Event } from '../../src/hat/eventer/common.js';
import { runCli, until } from './harness.js';
import {
  isNotActive,
  type Node,
  PREFIX,
  type RedundantHat,
  settled,
  startRedundantHat,
} from './redundancy-support.js';

const T = { timeout: 120_000 };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Acked {
  id: number;
  sha256: string;
  by: string;
}

/**
 * Writes new models in a loop until `stop()`, each to the nodes in turn (a different one first
 * every time, so that a standby that wrongly accepted writes would be caught writing); a node that
 * refuses passes the write to the next. Every acknowledged write is recorded with its node.
 */
function writer(nodes: readonly Node[]) {
  const acked: Acked[] = [];
  const refused: string[] = [];
  let stopped = false;
  let n = 0;
  const done = (async () => {
    while (!stopped) {
      const bytes = Buffer.from(`model ${n} ${'x'.repeat(64)}`);
      let stored = false;
      for (let k = 0; k < nodes.length && !stored; k++) {
        const node = nodes[(n + k) % nodes.length] as Node;
        try {
          const client = await node.client();
          const meta = await client.put('test.Model', bytes);
          assert.equal(meta.sha256, sha(bytes));
          acked.push({ id: meta.instanceId, sha256: meta.sha256, by: node.name });
          stored = true;
        } catch (err) {
          if (isNotActive(err)) refused.push(node.name);
          else await node.closeClient();
        }
      }
      n++;
      if (!stored) await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    acked,
    refused,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/** Model ids in the server's store with how many create events each has (no tombstones here). */
function eventsById(events: readonly Event[]): Map<number, number> {
  const byId = new Map<number, number>();
  for (const e of events) {
    if (e.type.length !== PREFIX.length + 1 || e.type[0] !== PREFIX[0] || e.type[1] !== PREFIX[1])
      continue;
    const id = Number(e.type[PREFIX.length]);
    byId.set(id, (byId.get(id) ?? 0) + 1);
  }
  return byId;
}

async function assertAllPresent(node: Node, acked: readonly Acked[]): Promise<void> {
  const client = await node.client();
  const list = new Map((await client.list()).map((m) => [m.instanceId, m]));
  for (const a of acked) {
    const m = list.get(a.id);
    assert.ok(
      m !== undefined,
      `acknowledged model ${a.id} (by ${a.by}) is missing on ${node.name}`,
    );
    assert.equal(m.sha256, a.sha256, `model ${a.id}`);
    assert.equal(m.revision, 1, `model ${a.id} was written once`);
  }
}

describe('two daemons in a redundant Hat', () => {
  let hat: RedundantHat;
  let a: Node;
  let b: Node;
  before(async () => {
    hat = await startRedundantHat();
    a = await hat.node('a');
    b = await hat.node('b');
  });
  after(async () => {
    await hat.close();
  });

  test(
    'exactly one is active; the standby serves reads and refuses writes naming the active',
    T,
    async () => {
      const active = await settled([a, b]);
      const standby = active === a ? b : a;
      const r = await active.readyz();
      assert.equal(r?.ready, true);
      assert.equal(r?.active?.self, true);
      const opServer = hat.cluster.servers[hat.cluster.operational()[0] as number];
      assert.equal(
        r?.event_server?.serverId,
        opServer?.serverId,
        'the active event server is used',
      );
      const s = await standby.readyz();
      assert.equal(s?.ready, true, 'a standby is ready: it serves reads');
      assert.equal(s?.active?.name, active.name);
      assert.equal(s?.active?.juggler, active.url);

      const put = await runCli(['put', '--type', 't.M', '--address', active.url], { input: 'one' });
      assert.equal(put.code, 0, put.stderr);
      const meta = JSON.parse(put.stdout) as { instance_id: number };

      const refused = await runCli(['put', '--type', 't.M', '--address', standby.url], {
        input: 'two',
      });
      assert.notEqual(refused.code, 0, 'a write to the standby fails');
      assert.match(refused.stderr, /is a standby in group 'aimm' and does not accept writes/);
      assert.match(
        refused.stderr,
        new RegExp(`the active instance is ${active.name} at ${active.url}`),
      );

      await until('the standby to see the model', async () => {
        const ls = await runCli(['ls', '--address', standby.url]);
        return ls.stdout.includes(`"instance_id":${meta.instance_id}`);
      });
      const got = await runCli(['get', String(meta.instance_id), '--address', standby.url]);
      assert.equal(got.stdout, 'one');

      // The Juggler state says the role too.
      for (const [node, role] of [
        [active, 'active'],
        [standby, 'standby'],
      ] as const) {
        const client = await node.client();
        await until(`${node.name}'s Juggler state to show its role`, async () => {
          return client.state?.redundancy?.role === role;
        });
        assert.equal(client.state?.redundancy?.active?.name, active.name);
        assert.equal(client.state?.redundancy?.event_server?.serverId, opServer?.serverId);
      }

      const monitorView = hat.monitor.components().filter((c) => c.group === 'aimm');
      assert.equal(monitorView.length, 2);
      for (const c of monitorView) {
        const data = JSON.parse(c.data) as { name: string; role: string; juggler: string };
        assert.equal(data.name, c.name);
        assert.equal(data.role, c.name === active.name ? 'active' : 'standby');
      }
    },
  );

  test(
    'kill -9 of the active during writes: the standby takes over, nothing lost or written twice',
    T,
    async () => {
      const active = await settled([a, b]);
      const standby = active === a ? b : a;
      const w = writer([a, b]);
      await until('writes to flow', async () => w.acked.length >= 30);
      assert.ok(w.refused.includes(standby.name), 'the standby refused its share');
      assert.ok(
        w.acked.every((x) => x.by === active.name),
        'only the active acknowledged',
      );
      const before = w.acked.length;
      const maxBefore = Math.max(...w.acked.map((x) => x.id));
      await active.stop('SIGKILL');
      await until('the standby to accept writes', async () =>
        w.acked.slice(before).some((x) => x.by === standby.name),
      );
      await until(
        'more writes on the new active',
        async () => w.acked.filter((x) => x.by === standby.name).length >= 30,
      );
      await w.stop();
      assert.equal((await standby.readyz())?.role, 'active');

      // Every acknowledged write is there, once; ids were never handed out twice.
      await assertAllPresent(standby, w.acked);
      const ids = w.acked.map((x) => x.id);
      assert.equal(new Set(ids).size, ids.length, 'no id acknowledged twice');
      const after = w.acked.filter((x) => x.by === standby.name).map((x) => x.id);
      assert.ok(
        after.every((id) => id > maxBefore),
        'ids continue past everything the old active wrote',
      );
      // In Hat, no model got two create events: no write was accepted by two actives for one id.
      for (const server of hat.cluster.servers) {
        for (const [id, n] of eventsById(server.peer.events))
          assert.equal(n, 1, `model ${id} has ${n} events on event${server.serverId}`);
      }

      // The old active comes back as a standby.
      const revived = await hat.node(active.name);
      if (active === a) a = revived;
      else b = revived;
      const again = await settled([a, b]);
      assert.equal(again, standby, 'the new active keeps its blessing');
      await until('the revived node to catch up', async () => {
        const list = await (await revived.client()).list();
        return list.length >= w.acked.length;
      });
      await assertAllPresent(revived, w.acked);
    },
  );

  test(
    'the active event server dies: the daemons move to the other one and writes flow again',
    T,
    async () => {
      const active = await settled([a, b]);
      const op = hat.cluster.operational()[0] as number;
      const w = writer([a, b]);
      await until('writes to flow', async () => w.acked.length >= 20);
      await hat.cluster.kill(op);
      const other = await hat.cluster.waitForOperational({ except: op });
      const otherId = hat.cluster.servers[other]?.serverId;
      const before = w.acked.length;
      await until('writes to flow through the other event server', async () => {
        const r = await active.readyz();
        return r?.event_server?.serverId === otherId && w.acked.length >= before + 20;
      });
      await w.stop();
      await until('the standby to use the other event server too', async () => {
        const standby = active === a ? b : a;
        return (await standby.readyz())?.event_server?.serverId === otherId;
      });
      await assertAllPresent(active, w.acked);
      for (const [id, n] of eventsById(hat.cluster.servers[other]?.peer.events ?? []))
        assert.equal(n, 1, `model ${id} has ${n} events`);
      await hat.cluster.revive(op);
    },
  );

  test('the monitor restarts: roles settle again and no write is lost', T, async () => {
    await settled([a, b]);
    const w = writer([a, b]);
    await until('writes to flow', async () => w.acked.length >= 20);
    await hat.monitor.stop();
    await until('both daemons to notice', async () => {
      const roles = await Promise.all([a.role(), b.role()]);
      return roles.every((r) => r === 'disconnected');
    });
    const during = w.acked.length;
    await hat.monitor.start();
    await hat.cluster.waitForOperational();
    const active = await settled([a, b], 'roles to settle after the restart');
    await until('writes to flow again', async () => w.acked.length >= during + 20);
    await w.stop();
    await assertAllPresent(active, w.acked);
    const ids = w.acked.map((x) => x.id);
    assert.equal(new Set(ids).size, ids.length, 'no id acknowledged twice');
  });

  test(
    'SIGTERM of the active: it releases its blessing first, the standby takes over',
    T,
    async () => {
      const active = await settled([a, b]);
      const standby = active === a ? b : a;
      const w = writer([a, b]);
      await until('writes to flow', async () => w.acked.length >= 20);
      const lines = active.proc.lines;
      await active.stop('SIGTERM');
      const released = lines.findIndex(
        (l) => l.msg === 'monitor: no longer active: writes refused',
      );
      const stopped = lines.findIndex((l) => l.msg === 'stopped');
      assert.ok(
        released >= 0 && released < stopped,
        'the blessing is released before the daemon stops',
      );
      const before = w.acked.length;
      await until('the standby to take over', async () =>
        w.acked.slice(before).some((x) => x.by === standby.name),
      );
      await w.stop();
      assert.equal((await standby.readyz())?.role, 'active');
      await assertAllPresent(standby, w.acked);
      const ids = w.acked.map((x) => x.id);
      assert.equal(new Set(ids).size, ids.length, 'no id acknowledged twice');
    },
  );
});
