#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's built-in runner.
// Node 20's `--test` takes no globs, so the file list is collected here.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = collect('dist/test');
if (filter.length > 0) files = files.filter((f) => filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// A last line of defence: a test that leaves a process behind must not hang CI for hours.
const limitMinutes = Number(process.env.TEST_TIMEOUT_MINUTES ?? '25');
const child = spawn(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', detached: true },
);
const timer = setTimeout(() => {
  console.error(`\nthe test run exceeded ${limitMinutes} minutes: killing it`);
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {}
  process.exit(1);
}, limitMinutes * 60_000);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
    process.exit(1);
  });
}
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  process.exit(code ?? (signal ? 1 : 0));
});
