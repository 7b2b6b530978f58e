#!/usr/bin/env node
// Builds aimm-store's SQLite extension (native/blob_io.c → native/build/aimm_blob_io.so) against
// the sqlite3ext.h of the better-sqlite3 that is installed, with the C compiler better-sqlite3's
// own build uses ($CC, else cc). Nothing is built when the library is up to date.
//
// The extension is optional: without it the sqlite backend stores large models through
// better-sqlite3's copies (more memory per upload). So a failure here warns and exits 0, unless
// AIMM_STORE_NATIVE=required (CI), where it fails the install.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'blob_io.c');
const outDir = join(root, 'native', 'build');
const target = join(
  outDir,
  process.platform === 'darwin' ? 'aimm_blob_io.dylib' : 'aimm_blob_io.so',
);
const required = process.env.AIMM_STORE_NATIVE === 'required';

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

function fail(message) {
  if (required) {
    console.error(`aimm-store: ${message}`);
    process.exit(1);
  }
  console.warn(
    `aimm-store: ${message}\n` +
      'aimm-store: large models will be stored without the blob I/O extension (more memory per upload).',
  );
  process.exit(0);
}

if (process.platform === 'win32') fail('the blob I/O extension is not built on Windows');

let header;
try {
  const pkg = createRequire(import.meta.url).resolve('better-sqlite3/package.json');
  header = join(dirname(pkg), 'deps', 'sqlite3');
} catch (err) {
  fail(`better-sqlite3 not found (${err.message})`);
}
const headerFile = join(header, 'sqlite3ext.h');
if (mtime(headerFile) < 0) fail(`${headerFile} not found`);

if (
  mtime(target) > Math.max(mtime(source), mtime(headerFile), mtime(fileURLToPath(import.meta.url)))
) {
  process.exit(0);
}
mkdirSync(outDir, { recursive: true });
const partial = `${target}.${process.pid}.tmp`;
const cc = process.env.CC || 'cc';
const args = ['-O2', '-Wall', '-Wextra', '-fPIC', '-I', header, source, '-o', partial];
args.unshift(process.platform === 'darwin' ? '-dynamiclib' : '-shared');
try {
  execFileSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
} catch (err) {
  rmSync(partial, { force: true });
  fail(`could not build ${target} with ${cc}: ${err.message}`);
}
renameSync(partial, target);
