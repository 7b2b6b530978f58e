/**
 * The web console in a real browser (headless Chromium driven by playwright-core) against the
 * daemon as a child process: the list shows what the store holds and follows writes made by the
 * CLI without a reload; upload of a new revision (and its compare-and-set) and rollback work end
 * to end; a read-only user sees no write controls; every request stays on 127.0.0.1; inputs are
 * labelled and buttons reachable by Tab; a 420 px window has no horizontal scroll.
 * Screenshots of each view at 1280×800 go to docs/console/ with CONSOLE_SCREENSHOTS=1 (else to a
 * temp folder).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { modelRegisterEvent } from '../../src/backends/event/format.js';
import { hashPassword } from '../../src/controls/juggler/auth.js';
import { DaemonProcess, ROOT, runCli, tempDir, writeJson } from '../daemon/harness.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';
import { launch, noBrowser } from './browser.js';

const T = { timeout: 60_000 };
const skip = noBrowser();
const { dir, cleanup } = tempDir('aimm-console-e2e-');
after(cleanup);
const shots = process.env.CONSOLE_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'console') : dir;

async function startDaemon(name: string, extra: Record<string, unknown> = {}) {
  const conf = writeJson(join(dir, `${name}.json`), {
    name,
    backend: { module: 'aimm-store/backends/sqlite', path: join(dir, `${name}.db`) },
    control: [
      { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 }, ...extra },
    ],
    log: { level: 'info' },
  });
  const daemon = new DaemonProcess(['serve', '--conf', conf]);
  await daemon.waitForMsg('ready');
  return { daemon, base: `http://127.0.0.1:${await daemon.port('http')}` };
}

async function put(
  base: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: path.startsWith('/models?') ? 'POST' : 'PUT',
    body,
    headers,
  });
}

/** Every request the page makes, to check that none leaves 127.0.0.1. */
/**
 * Polls `test(the matching elements' texts)` from the test's side: Playwright's `waitForFunction` evaluates its
 * predicate with `eval` in the page, which the console's CSP (no 'unsafe-eval') refuses once it
 * has to poll.
 */
async function waitForText(
  page: Page,
  selector: string,
  test: (texts: string[]) => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const texts = await page.$$eval(selector, (els) => els.map((e) => e.textContent ?? ''));
    if (test(texts)) return;
    if (Date.now() > deadline) throw new Error(`${selector}: text not as expected: ${texts}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

function recordRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  return urls;
}

function assertLocal(urls: string[], base: string): void {
  assert.ok(urls.length > 0);
  for (const u of urls) {
    if (u.startsWith('data:') || u.startsWith('blob:')) continue;
    assert.ok(u.startsWith(`${base}/`), `a request left the daemon: ${u}`);
  }
}

describe('web console (browser)', { skip: skip ?? false }, () => {
  let browser: Browser;
  let daemon: DaemonProcess;
  let base: string;
  let hasHistory = false;

  before(async () => {
    ({ daemon, base } = await startDaemon('open'));
    for (const [i, type] of ['sklearn.SVC', 'torch.ResNet', 'text.Model'].entries()) {
      const r = await put(base, `/models?type=${type}`, `model ${i + 1} bytes`);
      assert.equal(r.status, 201);
    }
    hasHistory = (await fetch(`${base}/models/1/revisions`)).status === 200;
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  const HISTORY_SKIP =
    'GET /models/{id}/revisions is not served on this branch (the history routes come with their own branch)';

  test('serves the page with a strict CSP, content types and ETags', T, async () => {
    const root = await fetch(`${base}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/console/');
    const page = await fetch(`${base}/console/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    const js = await fetch(`${base}/console/main.js`);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    const etag = js.headers.get('etag') ?? '';
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
    const again = await fetch(`${base}/console/main.js`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(`${base}/console/../dist/src/index.js`)).status, 404);
    assert.equal((await fetch(`${base}/console/nope.js`)).status, 404);
    assert.deepEqual(await (await fetch(`${base}/whoami`)).json(), {
      user: null,
      role: 'write',
      auth: false,
    });
  });

  test('the list shows the store and follows a CLI write live', T, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const urls = recordRequests(page);
    await page.goto(`${base}/`);
    await page.waitForSelector('.list-view[data-ready="true"]');
    await page.waitForSelector('#live.on');
    const ids = await page.$$eval('.rows .row', (rows) =>
      rows.map((r) => r.getAttribute('data-id')),
    );
    assert.deepEqual(ids, ['1', '2', '3']);
    assert.equal(await page.textContent('.rows .row[data-id="2"] .c1'), 'torch.ResNet');

    const r = await runCli(['put', '--address', `${base}/`, '--type', 'cli.Written', '-'], {
      input: 'from the cli',
    });
    assert.equal(r.code, 0, r.stderr);
    await page.waitForSelector('.rows .row[data-id="4"]');
    assert.equal(await page.textContent('.rows .row[data-id="4"] .c1'), 'cli.Written');
    assert.equal(await page.textContent('.rows .row[data-id="4"] .c5'), 'local');
    await page.fill('#filter', 'resnet');
    await waitForText(page, '.rows .row', (rows) => rows.length === 1);
    await page.fill('#filter', '');
    await page.screenshot({ path: join(shots, 'list.png') });
    assertLocal(urls, base);
    await page.close();
  });

  test('upload of a new revision, and a write meanwhile is a clear 412', T, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const urls = recordRequests(page);
    await page.goto(`${base}/console/#/models/1`);
    await page.waitForSelector('#upload-file');
    await page.setInputFiles('#upload-file', {
      name: 'new.bin',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from('revision two'),
    });
    await page.click('#upload-button');
    await page.waitForSelector('.message.ok');
    assert.match((await page.textContent('.message')) ?? '', /Stored as revision 2/);
    const now = await fetch(`${base}/models/1`);
    assert.equal(await now.text(), 'revision two');
    assert.equal(now.headers.get('x-model-revision'), '2');

    // Someone else writes revision 3; the page still shows 2: the upload must be refused.
    const etag = now.headers.get('etag') ?? '';
    assert.equal(
      (await put(base, '/models/1?type=sklearn.SVC', 'other writer', { 'If-Match': etag })).status,
      200,
    );
    await page.waitForSelector('.notice:not([hidden])');
    await page.setInputFiles('#upload-file', {
      name: 'late.bin',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from('too late'),
    });
    await page.click('#upload-button');
    await page.waitForSelector('.message.error');
    assert.match((await page.textContent('.message')) ?? '', /changed meanwhile.*now at 3/);
    assert.equal(await (await fetch(`${base}/models/1`)).text(), 'other writer');
    await page.click('.notice button');
    await page.waitForSelector('.notice[hidden]', { state: 'attached' });
    assertLocal(urls, base);
    await page.close();
  });

  test('rollback with a confirmation', { ...T, skip: false }, async (t) => {
    if (!hasHistory) {
      t.skip(HISTORY_SKIP);
      return;
    }
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${base}/console/#/models/1`);
    await page.waitForSelector('table.history tr[data-revision="1"]');
    await page.screenshot({ path: join(shots, 'model.png') });
    await page.click('tr[data-revision="1"] button.rollback');
    await page.waitForSelector('dialog[open]');
    await page.screenshot({ path: join(shots, 'rollback-confirm.png') });
    await page.click('#confirm-rollback-button');
    await page.waitForSelector('.message.ok');
    const now = await fetch(`${base}/models/1`);
    assert.equal(await now.text(), 'model 1 bytes');
    assert.equal(now.headers.get('x-model-revision'), '4');
    await page.waitForSelector('table.history tr[data-revision="4"]');
    await page.close();
  });

  test('the model view without the history routes still uploads and downloads', T, async (t) => {
    if (hasHistory) {
      t.skip('the history routes are served: covered by the rollback test');
      return;
    }
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${base}/console/#/models/2`);
    await page.waitForSelector('.summary');
    await page.screenshot({ path: join(shots, 'model.png') });
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('.summary button'),
    ]);
    const path = await download.path();
    const { readFileSync } = await import('node:fs');
    assert.equal(readFileSync(path, 'utf8'), 'model 2 bytes');
    await page.close();
  });

  test('status view: readiness and the rate chart', T, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${base}/console/#/status`);
    await page.waitForSelector('dl.status');
    assert.equal(await page.textContent('dl.status dd'), 'yes');
    // Two samples of /metrics (5 s apart) make the first rate point.
    await page.waitForSelector('svg.chart polyline.writes', { state: 'attached' });
    await page.screenshot({ path: join(shots, 'status.png') });
    await page.close();
  });

  test('labels and keyboard: every input labelled, every button reachable by Tab', T, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    for (const hash of ['#/', '#/models/2', '#/status']) {
      await page.goto(`${base}/console/${hash}`);
      await page.waitForSelector(
        hash === '#/' ? '.rows .row' : hash === '#/status' ? 'dl.status' : '.summary',
      );
      const unlabelled = await page.evaluate<
        string[]
      >(`[...document.querySelectorAll('input, select, textarea')]
        .filter((el) => el.labels.length === 0 && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML)`);
      assert.deepEqual(unlabelled, [], `unlabelled inputs on ${hash}`);
      const focusable = `[...document.querySelectorAll('button, a[href], input')]
        .filter((el) => el.offsetParent !== null)`;
      const count = await page.evaluate<number>(`${focusable}.length`);
      for (let i = 0; i < count + 5; i++) {
        await page.keyboard.press('Tab');
        await page.evaluate(`document.activeElement?.setAttribute('data-tabbed', '1')`);
      }
      const missed = await page.evaluate<string[]>(
        `${focusable}.filter((el) => !el.hasAttribute('data-tabbed')).map((el) => el.outerHTML.slice(0, 80))`,
      );
      assert.deepEqual(missed, [], `not reachable by Tab on ${hash}`);
    }
    await page.close();
  });

  test('a 420 px window scrolls no view sideways', T, async () => {
    const page = await browser.newPage({ viewport: { width: 420, height: 800 } });
    for (const hash of ['#/', '#/models/2', '#/status']) {
      await page.goto(`${base}/console/${hash}`);
      await page.waitForSelector(
        hash === '#/' ? '.rows .row' : hash === '#/status' ? 'dl.status' : '.summary',
      );
      const { scroll, client } = await page.evaluate<{ scroll: number; client: number }>(
        '({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })',
      );
      assert.ok(scroll <= client, `${hash}: ${scroll} px wide in a ${client} px window`);
    }
    await page.screenshot({ path: join(shots, 'narrow-status.png') });
    await page.close();
  });
});

describe('web console with users (browser)', { skip: skip ?? false }, () => {
  let browser: Browser;
  let daemon: DaemonProcess;
  let base: string;

  before(async () => {
    ({ daemon, base } = await startDaemon('auth', {
      users: [
        { username: 'writer', password: hashPassword('w-secret') },
        { username: 'reader', password: hashPassword('r-secret'), role: 'read' },
      ],
    }));
    const w = `Basic ${Buffer.from('writer:w-secret').toString('base64')}`;
    assert.equal((await put(base, '/models?type=a.B', 'one', { Authorization: w })).status, 201);
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  async function login(page: Page, user: string, password: string): Promise<void> {
    await page.goto(`${base}/`);
    await page.waitForSelector('form.login');
    await page.fill('#login-user', user);
    await page.fill('#login-password', password);
    await page.click('form.login button[type=submit]');
  }

  test('the login form; a wrong password is refused', T, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const urls = recordRequests(page);
    await page.goto(`${base}/`);
    await page.waitForSelector('form.login');
    await page.screenshot({ path: join(shots, 'login.png') });
    await login(page, 'reader', 'wrong');
    await page.waitForSelector('form.login [role=alert]');
    assert.match((await page.textContent('[role=alert]')) ?? '', /Wrong user name or password/);
    // The 401 of a console request carries no Basic challenge (no browser dialog).
    const r = await fetch(`${base}/whoami`, { headers: { 'X-Requested-With': 'x' } });
    assert.equal(r.status, 401);
    assert.doesNotMatch(r.headers.get('www-authenticate') ?? '', /^Basic/);
    assertLocal(urls, base);
    await page.close();
  });

  test('a read user sees no write controls; a write user does', T, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await login(page, 'reader', 'r-secret');
    await page.waitForSelector('.rows .row[data-id="1"]');
    assert.match((await page.textContent('#user')) ?? '', /reader \(read\)/);
    await page.goto(`${base}/console/#/models/1`);
    await page.waitForSelector('.summary');
    assert.equal(await page.$('#upload-file'), null);
    assert.equal(await page.$('button.rollback'), null);
    // The server refuses anyway.
    const r = `Basic ${Buffer.from('reader:r-secret').toString('base64')}`;
    assert.equal((await put(base, '/models/1?type=a.B', 'x', { Authorization: r })).status, 403);
    assert.deepEqual(
      await (await fetch(`${base}/whoami`, { headers: { Authorization: r } })).json(),
      {
        user: 'reader',
        role: 'read',
        auth: true,
      },
    );
    await page.click('#logout');
    await page.waitForSelector('form.login');
    await login(page, 'writer', 'w-secret');
    await page.waitForSelector('.rows .row[data-id="1"]');
    await page.goto(`${base}/console/#/models/1`);
    await page.waitForSelector('#upload-file');
    await page.close();
  });
});

describe('web console on a provisional revision (browser)', { skip: skip ?? false }, () => {
  let browser: Browser;
  let daemon: DaemonProcess;
  let base: string;
  let peer: HatPeer;

  before(async () => {
    // Model 1 has three events in Hat (exact revision 3); the history queries are held, so the
    // event backend (full_replay latest_then_history, the default) serves revision 1 provisional.
    peer = await startHatPeer({ flushDelayMs: 10 });
    const prefix = ['aimm', 'model'];
    for (const text of ['one', 'two', 'three'])
      peer.register([modelRegisterEvent(prefix, 1, 'a.B', Buffer.from(text))]);
    peer.holdHistoryQueries(true);
    const conf = writeJson(join(dir, 'provisional.json'), {
      name: 'provisional',
      backend: { module: 'aimm-store/backends/event', model_prefix: prefix },
      hat: { eventer_server: { host: peer.host, port: peer.port } },
      control: [{ module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } }],
      log: { level: 'info' },
    });
    daemon = new DaemonProcess(['serve', '--conf', conf]);
    await daemon.waitForMsg('ready');
    base = `http://127.0.0.1:${await daemon.port('http')}`;
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await peer?.close();
  });

  test(
    'no compare-and-set on a lower bound; the exact revision is announced, then used',
    T,
    async () => {
      const head = await fetch(`${base}/models/1`, { method: 'HEAD' });
      assert.equal(head.headers.get('x-model-revision-provisional'), 'true');
      assert.match(head.headers.get('etag') ?? '', /^W\//);
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const requests: string[] = [];
      page.on('request', (r) => {
        if (r.method() !== 'GET' && r.method() !== 'HEAD')
          requests.push(`${r.method()} ${r.url()}`);
      });
      await page.goto(`${base}/console/#/models/1`);
      await page.waitForSelector('#upload-file');
      assert.match((await page.textContent('.summary')) ?? '', /at least 1 \(not exact yet/);
      await page.setInputFiles('#upload-file', {
        name: 'new.bin',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from('four'),
      });
      await page.click('#upload-button');
      await page.waitForSelector('.message.error');
      assert.match(
        (await page.textContent('.message')) ?? '',
        /Not sent: revision 1 is not exact yet/,
      );
      assert.deepEqual(requests, [], 'nothing was sent');
      assert.equal(await (await fetch(`${base}/models/1`)).text(), 'three');

      // The history is counted: the change stream brings the exact revision, the page says so.
      peer.holdHistoryQueries(false);
      await page.waitForSelector('.notice:not([hidden])');
      assert.match(
        (await page.textContent('.notice')) ?? '',
        /exact revision of this model is now known: 3/,
      );
      await page.click('.notice button');
      await waitForText(page, '.summary', (t) => t.join('').includes('Revision3Size'));
      await page.setInputFiles('#upload-file', {
        name: 'new.bin',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from('four'),
      });
      await page.click('#upload-button');
      await page.waitForSelector('.message.ok');
      assert.match((await page.textContent('.message')) ?? '', /Stored as revision 4/);
      assert.equal(await (await fetch(`${base}/models/1`)).text(), 'four');
      await page.close();
    },
  );
});
