/**
 * The console's routes without a daemon: which paths route where (and only when the console is
 * on), and the assets map read from a folder (only known file types, index.html at '').
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadAssets } from '../../src/controls/http/console.js';
import { routeOf } from '../../src/controls/http/router.js';
import { tempDir } from '../daemon/harness.js';

describe('console routes', () => {
  test('/, /console and /console/... route to the console only when it is on', () => {
    assert.deepEqual(
      [routeOf('/', true, true).route, routeOf('/console', true, true).id],
      ['root', ''],
    );
    assert.equal(routeOf('/console/main.js?x=1', true, true).id, '/main.js');
    assert.equal(routeOf('/console/', true, true).route, 'console');
    assert.equal(routeOf('/', true, false).route, 'other');
    assert.equal(routeOf('/console/', true, false).route, 'other');
    assert.equal(routeOf('/consoles', true, true).route, 'other');
    assert.equal(routeOf('/whoami', false, false).route, 'whoami');
  });

  test('the assets are the folder’s files of known types; a missing folder serves none', () => {
    const { dir, cleanup } = tempDir('aimm-console-assets-');
    after(cleanup);
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(join(dir, 'a.js'), 'export {};');
    writeFileSync(join(dir, 'notes.txt'), 'secret');
    mkdirSync(join(dir, 'sub.js'));
    const assets = loadAssets(dir);
    assert.deepEqual([...assets.keys()].sort(), ['', 'a.js', 'index.html']);
    assert.equal(assets.get('')?.type, 'text/html; charset=utf-8');
    assert.equal(assets.get('a.js')?.type, 'text/javascript; charset=utf-8');
    assert.notEqual(assets.get('a.js')?.etag, assets.get('index.html')?.etag);
    assert.equal(loadAssets(join(dir, 'missing')).size, 0);
  });
});
