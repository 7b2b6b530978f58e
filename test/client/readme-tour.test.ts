/**
 * The README's tour leaves nothing behind in the clone: every file its commands create is under
 * `data/` (the daemon's folder, ignored by git) and removed again by the tour itself.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../daemon/harness.js';

function tourBlocks(readme: string): string[] {
  const start = readme.indexOf('## A five-minute tour');
  const end = readme.indexOf('\n## ', start + 1);
  assert.ok(start >= 0 && end > start, 'README.md has the tour');
  return [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

test('the README tour creates files only under data/ and removes them', () => {
  const blocks = tourBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  assert.ok(blocks.length >= 2);
  const commands = blocks
    .join('\n')
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '');
  const created = commands.flatMap((c) =>
    [...c.matchAll(/(?<![0-9&])>>?\s*([^\s|;&]+)/g)].map((m) => m[1] as string),
  );
  assert.ok(created.length > 0, 'the tour writes a model file');
  for (const file of created) {
    assert.ok(file.startsWith('data/'), `the tour creates ${file} outside data/`);
    assert.ok(
      commands.some((c) =>
        new RegExp(`^rm (-f )?${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`).test(c),
      ),
      `the tour removes ${file}`,
    );
  }
  // Files given to `put` are ones the tour made (or stdin).
  for (const c of commands.filter((c) => /aimm-store put\b/.test(c))) {
    const args = c.slice(c.indexOf('aimm-store put')).split(/\s+/);
    const file = args.at(-1) as string;
    if (file === '-' || file.startsWith('-') || args.at(-2)?.startsWith('--')) continue;
    assert.ok(created.includes(file), `put reads ${file}, which the tour does not create`);
  }
});
