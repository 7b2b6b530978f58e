#!/usr/bin/env node
// The web console's static files: console/index.html and console/console.css copied beside the
// compiled console/src/*.ts in dist/console/ (the TypeScript is compiled by console/tsconfig.json).
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'console');
mkdirSync(out, { recursive: true });
for (const name of ['index.html', 'console.css'])
  copyFileSync(join(root, 'console', name), join(out, name));
