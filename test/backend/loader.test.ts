/**
 * Backend module loading (design §3): built-in by package specifier through the export map,
 * third-party files by relative path, absolute path and file: URL, and every failure turned into a
 * BackendLoadError naming the module and the cause; config validation with paths and rules.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  BackendLoadError,
  backendSubscription,
  createBackend,
  loadBackend,
  validateBackendConf,
} from '../../src/backend/loader.js';
import type { Backend } from '../../src/backend/types.js';
import { SchemaRegistry } from '../../src/common/schema.js';
import { tempDir, testContext } from './support/context.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'fixtures');
const memoryAbs = join(here, '..', 'support', 'memory-backend.js');

async function loadError(p: Promise<unknown>): Promise<BackendLoadError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof BackendLoadError, `expected BackendLoadError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a BackendLoadError');
}

async function roundTrip(backend: Backend): Promise<void> {
  try {
    const { meta } = await backend.createModel('t', new Uint8Array([1, 2, 3]));
    assert.deepEqual([...((await backend.getModel(meta.instanceId))?.instance ?? [])], [1, 2, 3]);
  } finally {
    await backend.close();
  }
}

describe('backend loader', () => {
  it('loads the built-in sqlite backend by its package specifier (export map)', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'sub', 'models.db');
      const conf = { module: 'aimm-store/backends/sqlite', path };
      const backend = await createBackend(conf, testContext());
      assert.equal(backend.constructor.name, 'SqliteBackend');
      assert.ok(existsSync(path));
      await roundTrip(backend);
      assert.deepEqual(await backendSubscription(conf), []);
    } finally {
      remove();
    }
  });

  it('loads a third-party backend file by relative path (against baseDir), absolute path and file: URL', async () => {
    const ctx = testContext();
    const relative = await createBackend({ module: '../support/memory-backend.js' }, ctx, {
      baseDir: here,
    });
    assert.equal(relative.constructor.name, 'MemoryBackend');
    await roundTrip(relative);
    await roundTrip(await createBackend({ module: memoryAbs }, ctx));
    await roundTrip(await createBackend({ module: pathToFileURL(memoryAbs).href }, ctx));
  });

  it('loads a third-party backend installed as a package beside the config (bare name from baseDir)', async () => {
    const { dir, remove } = tempDir('aimm-store-pkg-');
    try {
      const pkg = join(dir, 'node_modules', 'acme-aimm-backend');
      mkdirSync(pkg, { recursive: true });
      writeFileSync(
        join(pkg, 'package.json'),
        JSON.stringify({ name: 'acme-aimm-backend', type: 'module', exports: './index.js' }),
      );
      writeFileSync(
        join(pkg, 'index.js'),
        `export { create } from ${JSON.stringify(pathToFileURL(memoryAbs).href)};\n`,
      );
      const backend = await createBackend({ module: 'acme-aimm-backend' }, testContext(), {
        baseDir: dir,
      });
      assert.equal(backend.constructor.name, 'MemoryBackend');
      await roundTrip(backend);
      // Without that baseDir the package is not found, and the error says so.
      const err = await loadError(createBackend({ module: 'acme-aimm-backend' }, testContext()));
      assert.match(err.message, /backend module 'acme-aimm-backend' cannot be loaded/);
    } finally {
      remove();
    }
  });

  it('a relative path is resolved against baseDir, not the working directory', async () => {
    const err = await loadError(
      createBackend({ module: './support/memory-backend.js' }, testContext(), { baseDir: here }),
    );
    assert.match(err.message, /backend module '\.\/support\/memory-backend\.js' cannot be loaded/);
  });

  it('a missing module: the error names the module and the cause', async () => {
    const err = await loadError(createBackend({ module: 'no-such-backend-pkg' }, testContext()));
    assert.equal(err.module, 'no-such-backend-pkg');
    assert.match(err.message, /backend module 'no-such-backend-pkg' cannot be loaded/);
    assert.match(err.message, /Cannot find package 'no-such-backend-pkg'/);
    const missingFile = join(fixtures, 'does-not-exist.js');
    const err2 = await loadError(createBackend({ module: missingFile }, testContext()));
    assert.ok(err2.message.includes(missingFile), err2.message);
    assert.match(err2.message, /cannot be loaded/);
  });

  it('a module that throws at import: named, with its error', async () => {
    const spec = join(fixtures, 'throws-on-import.js');
    const err = await loadError(createBackend({ module: spec }, testContext()));
    assert.ok(err.message.includes(spec));
    assert.match(err.message, /fixture failed at import time/);
    assert.ok(err.cause instanceof Error);
  });

  it('a module without create: named, and what is missing', async () => {
    const spec = join(fixtures, 'no-create.js');
    const err = await loadError(createBackend({ module: spec }, testContext()));
    assert.equal(err.message, `backend module '${spec}' does not export a function 'create'`);
  });

  it('create throws (sync) or rejects (async): named, with the cause', async () => {
    const err = await loadError(
      createBackend({ module: memoryAbs, fail_create: 'disk on fire' }, testContext()),
    );
    assert.equal(
      err.message,
      `backend module '${memoryAbs}' failed to create the backend: disk on fire`,
    );
    assert.ok(err.cause instanceof Error);
    const bad = join(fixtures, 'bad-backend.js');
    const err2 = await loadError(createBackend({ module: bad, mode: 'reject' }, testContext()));
    assert.match(err2.message, /failed to create the backend: fixture create rejected/);
    assert.ok(err2.message.includes(bad));
  });

  it('create returning something that is not a backend is refused', async () => {
    const bad = join(fixtures, 'bad-backend.js');
    const err = await loadError(createBackend({ module: bad, mode: 'not-backend' }, testContext()));
    assert.match(
      err.message,
      /create\(\) did not return a backend \(missing: getModel, createModel/,
    );
  });

  it('the main schema: module is required and must be a string', async () => {
    for (const conf of [{}, { path: 'x.db' }, { module: 42 }, null, 'sqlite']) {
      const err = await loadError(createBackend(conf, testContext()));
      assert.ok(err.issues.length > 0, JSON.stringify(conf));
      assert.match(err.message, /backend configuration is invalid: \$\.backend/);
    }
    assert.deepEqual(await validateBackendConf({}), [
      { path: '$.backend.module', rule: 'required', message: 'is required' },
    ]);
    assert.deepEqual(await validateBackendConf({ module: 42 }), [
      { path: '$.backend.module', rule: 'type', message: 'must be a string, not number 42' },
    ]);
  });

  it("the sqlite backend's own schema: path required, extras checked, issues name path and rule", async () => {
    const { dir, remove } = tempDir();
    try {
      const module = 'aimm-store/backends/sqlite';
      assert.deepEqual(await validateBackendConf({ module }), [
        { path: '$.backend.path', rule: 'required', message: 'is required' },
      ]);
      const issues = await validateBackendConf({
        module,
        path: join(dir, 'm.db'),
        synchronous: 'fast',
        busy_timeout_ms: -1,
        group_commit: { max_writes: 0, turbo: true },
      });
      assert.deepEqual(issues.map((i) => `${i.path} ${i.rule}`).sort(), [
        '$.backend.busy_timeout_ms minimum',
        '$.backend.group_commit.max_writes minimum',
        '$.backend.group_commit.turbo additionalProperties',
        '$.backend.synchronous enum',
      ]);
      const err = await loadError(createBackend({ module, path: 7 }, testContext()));
      assert.equal(err.module, module);
      assert.match(
        err.message,
        /backend module 'aimm-store\/backends\/sqlite': configuration is invalid: \$\.backend\.path: must be a string, not number 7 \(rule: type\)/,
      );
      assert.deepEqual(err.issues, [
        { path: '$.backend.path', rule: 'type', message: 'must be a string, not number 7' },
      ]);
      // Validation alone creates nothing.
      const path = join(dir, 'never', 'm.db');
      assert.deepEqual(await validateBackendConf({ module, path }), []);
      assert.equal(existsSync(join(dir, 'never')), false);
      // A seed (AIMM) config is valid as it is.
      assert.deepEqual(await validateBackendConf({ module, path: 'data/aimm.db' }), []);
    } finally {
      remove();
    }
  });

  it('validateBackendConf reports an unloadable module at $.backend.module with rule module', async () => {
    const issues = await validateBackendConf(
      { module: 'no-such-backend-pkg' },
      { basePath: '$.b' },
    );
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.path, '$.b.module');
    assert.equal(issues[0]?.rule, 'module');
    assert.match(issues[0]?.message ?? '', /no-such-backend-pkg/);
  });

  it('a third-party confSchema object is registered and applied; createSubscription passes through', async () => {
    const spec = join(fixtures, 'schema-backend.js');
    const schemas = new SchemaRegistry();
    assert.deepEqual(await validateBackendConf({ module: spec }, { schemas }), [
      { path: '$.backend.level', rule: 'required', message: 'is required' },
    ]);
    assert.deepEqual(await validateBackendConf({ module: spec, level: 0 }, { schemas }), [
      { path: '$.backend.level', rule: 'minimum', message: 'must be >= 1' },
    ]);
    // Loading twice with one registry reuses the registered schema.
    const loaded = await loadBackend({ module: spec, level: 2, prefix: ['x', 'y'] }, { schemas });
    assert.deepEqual(loaded.subscription(), [['x', 'y', '*']]);
    assert.deepEqual(await backendSubscription({ module: spec, level: 1 }, { schemas }), [
      ['aimm', 'model', '*'],
    ]);
    await roundTrip(await loaded.create(testContext()));
  });

  it('a broken or unknown confSchema, or a bad createSubscription, is the module’s error', async () => {
    const badSchema = join(fixtures, 'bad-schema.js');
    const e1 = await loadError(loadBackend({ module: badSchema }));
    assert.match(e1.message, /exports an invalid 'confSchema'/);
    assert.ok(e1.message.includes(badSchema));
    const unknown = join(fixtures, 'unregistered-schema.js');
    const e2 = await loadError(loadBackend({ module: unknown }));
    assert.match(
      e2.message,
      /names its config schema 'aimm:\/\/server\/backend\/nowhere\.yaml#', which is not registered/,
    );
    const bad = join(fixtures, 'bad-backend.js');
    const e3 = await loadError(backendSubscription({ module: bad, mode: 'bad-subscription' }));
    assert.match(e3.message, /createSubscription must return an array of event types/);
    const e4 = await loadError(backendSubscription({ module: bad, mode: 'subscription-throws' }));
    assert.match(e4.message, /createSubscription failed: fixture subscription failed/);
  });

  it('create failing inside the sqlite backend (file in use) is reported with the file', async () => {
    const { dir, remove } = tempDir();
    const path = join(dir, 'm.db');
    const conf = { module: 'aimm-store/backends/sqlite', path, busy_timeout_ms: 50 };
    const first = await createBackend(conf, testContext());
    try {
      const err = await loadError(createBackend(conf, testContext()));
      assert.match(
        err.message,
        /^backend module 'aimm-store\/backends\/sqlite' failed to create the backend: sqlite file '.*' is in use/,
      );
      assert.ok(err.message.includes(path));
    } finally {
      await first.close();
      remove();
    }
  });
});
