/**
 * Fuzz: random frames and random requests from many clients, in both framings, with and without
 * login. The server must neither crash (an uncaught exception or unhandled rejection fails this
 * file) nor stop serving: after every case a fresh client still gets answers, and every request a
 * fuzz client sent with a readable id was answered unless its connection was closed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ADMIN, type Harness, sleep, startJuggler, until } from './support/harness.js';
import { RawClient } from './support/raw-client.js';

const NAMES = [
  'login',
  'logout',
  'add_instance',
  'update_instance',
  'get_instance',
  'remove_instance',
  'list_instances',
  'fit',
  'no_such',
];

const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.integer(),
  fc.constantFrom(1, 2, 0, -1, 2 ** 53, 'aGVsbG8=', '', 'admin', ADMIN.password),
);
const requestData = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.record(
    {
      username: fieldValue,
      password: fieldValue,
      model_type: fieldValue,
      instance_b64: fieldValue,
      instance_id: fieldValue,
      expected_revision: fieldValue,
      meta_only: fieldValue,
    },
    { requiredKeys: [] },
  ),
);
const request = fc.record({
  id: fc.integer({ min: 1, max: 1000 }),
  name: fc.constantFrom(...NAMES),
  data: requestData,
});

type Action =
  | { kind: 'request'; req: { id: number; name: string; data: unknown }; segment: number }
  | { kind: 'raw'; text: string };
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('request' as const),
      req: request,
      segment: fc.integer({ min: 1, max: 200 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('raw' as const), text: fc.string({ maxLength: 60 }) }),
  },
);

describe('fuzz', () => {
  let h: Harness;
  before(async () => {
    h = await startJuggler({ users: [ADMIN], state_instances: true, max_message_size: 2048 });
  });
  after(() => h.close());

  async function healthy(): Promise<void> {
    const c = await RawClient.open(h.url, '0.7');
    const r = await c.request('login', { username: 'admin', password: ADMIN.password });
    assert.deepEqual(r.data, { success: true });
    assert.equal((await c.request('list_instances', null)).success, true);
    await c.close();
  }

  test('random frames and requests never crash the server', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('0.6' as const, '0.7' as const),
        fc.boolean(),
        fc.array(action, { minLength: 1, maxLength: 12 }),
        async (framing, login, actions) => {
          const c = await RawClient.open(h.url, framing);
          if (login)
            c.sendJson(
              JSON.stringify({
                type: 'request',
                id: 0,
                name: 'login',
                data: { username: 'admin', password: ADMIN.password },
              }),
            );
          const sent: number[] = [];
          for (const a of actions) {
            if (c.closeCode !== null) break;
            if (a.kind === 'raw') {
              c.sendFrame(a.text);
              continue;
            }
            const json = JSON.stringify({ type: 'request', ...a.req });
            if (framing === '0.6') c.sendFrame(json);
            else
              for (let i = 0; i < json.length; i += a.segment)
                c.sendFrame(
                  (i + a.segment < json.length ? '1' : '0') + json.slice(i, i + a.segment),
                );
            sent.push(a.req.id);
          }
          // Everything sent gets an answer, unless the server closed the connection (bad frames).
          await until(
            () =>
              c.closeCode !== null ||
              sent.every((id) => c.messages.some((m) => m.type === 'response' && m.id === id)),
            'answers or close',
            10_000,
          ).catch(() => assert.fail(`no answer: ${JSON.stringify(actions)}`));
          if (c.closeCode === null) await c.close();
        },
      ),
      { numRuns: 300 },
    );
    await sleep(50);
    await healthy();
  });
});
