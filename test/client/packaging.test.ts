/**
 * Packaging: the npm tarball ships what runs (compiled sources, schemas, example configs, the
 * systemd unit, README, CHANGELOG) and nothing of the tests, benches or recorded vectors; every
 * `bin` and `exports` target is in it. And the client side (`aimm-store/client`, the client
 * commands) never loads the daemon's native addons, so a client-only install may skip building
 * them (`npm install --ignore-scripts`, see README.md).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../daemon/harness.js';

interface PackedFile {
  path: string;
}

function packedFiles(): string[] {
  // --ignore-scripts: no `prepare` build here (the test run has built dist/ already).
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    shell: process.platform === 'win32',
  });
  assert.equal(r.status, 0, `npm pack failed: ${r.stderr}`);
  const [pack] = JSON.parse(r.stdout) as { files: PackedFile[] }[];
  assert.ok(pack !== undefined, 'npm pack --json printed no package');
  return pack.files.map((f) => f.path);
}

describe('packaging', () => {
  test('npm pack: what runs, and no tests, benches or vectors', () => {
    const files = packedFiles();
    const unwanted = files.filter(
      (f) =>
        /^(test|bench|src|scripts|\.ci|dist\/test|dist\/bench)\//.test(f) ||
        /vectors/.test(f) ||
        /\.map$/.test(f) ||
        f.startsWith('native/build/') ||
        f === 'dist/.tsbuildinfo',
    );
    assert.deepEqual(unwanted, [], 'files that do not run');
    for (const needed of [
      'package.json',
      'README.md',
      'CHANGELOG.md',
      'schemas/main.yaml',
      'schemas/controls/juggler.yaml',
      'config/default.yaml',
      'systemd/aimm-store.service',
      'dist/src/client/index.d.ts',
      // The sqlite blob I/O extension is built at install, on the user's machine.
      'native/blob_io.c',
      'native/build.mjs',
    ])
      assert.ok(files.includes(needed), `${needed} is in the tarball`);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
      exports: Record<string, string>;
    };
    for (const target of [...Object.values(pkg.bin), ...Object.values(pkg.exports)]) {
      const path = target.replace(/^\.\//, '');
      assert.ok(files.includes(path), `${target} (bin/exports) is in the tarball`);
    }
    assert.ok(files.filter((f) => f.startsWith('dist/src/')).length > 50);
  });

  test('the client side loads neither better-sqlite3 nor unix-dgram', () => {
    const modules = [
      'dist/src/client/index.js',
      'dist/src/cli/client-commands.js',
      'dist/src/cli/version.js',
    ].map((m) => pathToFileURL(join(ROOT, m)).href);
    // CommonJS packages imported from ESM land in require.cache: list the packages loaded.
    const script = `
      import { createRequire } from 'node:module';
      for (const m of ${JSON.stringify(modules)}) await import(m);
      const cache = createRequire(import.meta.url).cache;
      const names = new Set(Object.keys(cache).map((p) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(p)?.[1]).filter(Boolean));
      console.log(JSON.stringify([...names].sort()));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const loaded = JSON.parse(r.stdout) as string[];
    assert.ok(loaded.includes('ws'), `the check sees CommonJS packages (loaded: ${loaded})`);
    assert.ok(!loaded.includes('better-sqlite3'), `better-sqlite3 loaded: ${loaded}`);
    assert.ok(!loaded.includes('unix-dgram'), `unix-dgram loaded: ${loaded}`);
  });
});
