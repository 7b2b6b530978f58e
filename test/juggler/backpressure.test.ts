/**
 * The session's window, on a fake WebSocket with mocked timers: at `max_pending_requests` it
 * pauses reading, keeps what was already parsed in order, resumes when requests complete, and a
 * connection paused by us is not dropped by the ping timeout (its pongs wait unread); once it
 * reads again the ping clock starts over.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { pino } from 'pino';
import type { WebSocket } from 'ws';
import { toSettings } from '../../src/controls/juggler/conf.js';
import {
  Session,
  type SessionEvent,
  type SessionHost,
} from '../../src/controls/juggler/session.js';
import { HeldBackend } from './support/test-backends.js';

class FakeWs extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  sent: string[] = [];
  paused = false;
  pauses = 0;
  terminated = false;
  send(data: string): void {
    this.sent.push(data);
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }
  close(): void {
    this.readyState = 2;
  }
  /** A text message as the WebSocket layer hands it over. */
  receive(text: string): void {
    this.emit('message', Buffer.from(text), false);
  }
  responses(): { id: number; success: boolean }[] {
    return this.sent
      .filter((t) => t.startsWith('0{"type": "response"'))
      .map((t) => JSON.parse(t.slice(1)) as { id: number; success: boolean });
  }
}

function request(id: number): string {
  return `0${JSON.stringify({ type: 'request', id, name: 'list_instances', data: null })}`;
}

/** Lets the held backend's promises and the session's `then` callbacks run (setImmediate is real). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('session window (backpressure)', () => {
  let backend: HeldBackend;
  let ws: FakeWs;
  let events: SessionEvent[];
  let session: Session;

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    backend = new HeldBackend();
    ws = new FakeWs();
    events = [];
    const logger = pino({ level: 'silent' });
    const settings = toSettings({
      module: 'aimm-store/controls/juggler',
      server: { host: '127.0.0.1', port: 0 },
      framing: '0.7',
      max_pending_requests: 2,
      ping_delay: 1,
      ping_timeout: 1,
    });
    const host: SessionHost = {
      settings,
      env: { backend, users: null, logger, onLoginFailure: () => {} },
      logger,
      stateChanged: () => {},
      changeSeq: () => 0,
      closed: () => {},
      count: (e) => events.push(e),
    };
    session = new Session(ws as unknown as WebSocket, 'test', host);
  });

  afterEach(() => {
    mock.timers.reset();
  });

  test('pauses at the window, keeps parsed messages in order, resumes when requests complete', async () => {
    backend.holding = true;
    for (const id of [1, 2, 3, 4, 5]) ws.receive(request(id));
    ws.receive('2probe');
    await settle();
    assert.equal(backend.held, 2);
    assert.equal(session.inFlight, 2);
    assert.equal(ws.paused, true);
    assert.equal(session.isPaused, true);
    assert.equal(session.backlogLength, 4); // requests 3, 4, 5 and the ping
    assert.deepEqual(
      events.filter((e) => e.kind === 'paused'),
      [{ kind: 'paused' }],
    );
    assert.deepEqual(ws.responses(), []);
    assert.ok(!ws.sent.includes('3probe'));

    backend.release();
    await settle();
    assert.deepEqual(
      ws.responses().map((r) => [r.id, r.success]),
      [1, 2, 3, 4, 5].map((id) => [id, true]),
    );
    // The ping is read once the requests before it are dispatched (5 went out as 3 completed).
    assert.ok(ws.sent.indexOf('3probe') > ws.sent.findIndex((t) => t.includes('"id": 3')));
    assert.equal(ws.paused, false);
    assert.equal(session.isPaused, false);
    assert.equal(session.backlogLength, 0);
    assert.equal(backend.maxActive, 2);
    assert.ok(!events.some((e) => e.kind === 'rejected'));
  });

  test('a connection we paused is not dropped by the ping timeout; pings start over after', async () => {
    backend.holding = true;
    for (const id of [1, 2, 3]) ws.receive(request(id));
    await settle();
    assert.equal(ws.paused, true);
    // Far past ping_delay + ping_timeout: no ping sent, not terminated.
    mock.timers.tick(60_000);
    assert.equal(ws.terminated, false);
    assert.ok(!ws.sent.includes('2'));

    backend.release();
    await settle();
    assert.equal(ws.paused, false);
    assert.equal(ws.responses().length, 3);
    // Reading again: the idle clock runs from the resume.
    mock.timers.tick(1000);
    assert.ok(ws.sent.includes('2'), 'pinged after ping_delay');
    mock.timers.tick(1000);
    assert.equal(ws.terminated, true, 'silent after the ping: dropped');
  });

  test('closing while paused reads again (for the close handshake) and drops the backlog', async () => {
    backend.holding = true;
    for (const id of [1, 2, 3, 4]) ws.receive(request(id));
    await settle();
    assert.equal(session.backlogLength, 2);
    session.close(1000, 'bye');
    assert.equal(ws.paused, false);
    assert.equal(session.backlogLength, 0);
    backend.release();
    await settle();
    assert.deepEqual(ws.responses(), []); // closing: answers are dropped
  });
});
