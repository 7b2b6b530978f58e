/**
 * The backend contract suite (test/support/backend-contract.ts) against the event backend and the
 * test peer: without a snapshot, with a snapshot, and with `ack: persisted`. Each test gets its own
 * model prefix on one shared peer (a fresh, empty store); `reopen` opens the same prefix (and
 * snapshot file) again.
 */
import { join } from 'node:path';
import { after, before } from 'node:test';
import { create } from '../../src/backends/event.js';
import type { HatPeer } from '../peer/hat-peer.js';
import { runBackendContract } from '../support/backend-contract.js';
import { eventConf, peerContext, startPeer, tempDir, waitFor } from './support.js';

let peer: HatPeer;
let counter = 0;
before(async () => {
  peer = await startPeer({ flushDelayMs: 5 });
});
after(async () => {
  await peer.close();
});

function variant(name: string, extra: (dir: string) => Record<string, unknown>, acks: string[]) {
  runBackendContract(
    name,
    async () => {
      const { dir, remove } = tempDir();
      const conf = eventConf({ model_prefix: ['contract', String(++counter)], ...extra(dir) });
      const open = async () => {
        const b = create(conf, peerContext(peer));
        await b.whenReady();
        // Without a snapshot, a reopen is ready from `latest` with provisional revisions (marked
        // `revisionProvisional`); the contract's revisions hold once the history is counted.
        await waitFor(
          async () => !(await b.getModels()).some((m) => m.revisionProvisional === true),
          'revisions exact',
        );
        return b;
      };
      return { backend: await open(), reopen: open, cleanup: async () => remove() };
    },
    { acks: acks as ('registered' | 'persisted')[], propertyRuns: 10 },
  );
}

variant('event (memory)', () => ({}), ['registered']);
variant('event (snapshot)', (dir) => ({ snapshot: { path: join(dir, 'snap.db') } }), [
  'registered',
]);
variant(
  'event (snapshot, ack persisted)',
  (dir) => ({ snapshot: { path: join(dir, 'snap.db') }, ack: 'persisted' }),
  ['persisted'],
);
