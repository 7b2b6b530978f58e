/**
 * The export archive: a round trip keeps every byte and metadata; a truncated, damaged or foreign
 * file is refused with an error naming the entry; `tar` itself reads what we write.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type ArchivedModel,
  ArchiveError,
  ArchiveReader,
  ArchiveWriter,
} from '../../src/transfer/archive.js';

const dir = mkdtempSync(join(tmpdir(), 'aimm-archive-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function metaOf(id: number, bytes: Buffer, type = 't.M'): ArchivedModel {
  return {
    instance_id: id,
    model_type: type,
    revision: 1,
    size: bytes.length,
    sha256: sha(bytes),
    updated: '2026-12-04T00:00:00.000Z',
  };
}

async function write(path: string, models: [number, Buffer][]): Promise<void> {
  const w = await ArchiveWriter.create(path, {
    format: 'aimm-store-export',
    version: 1,
    created: new Date().toISOString(),
    source: { name: 'test', backend: 'x' },
    models: models.length,
  });
  for (const [id, b] of models) await w.addModel(metaOf(id, b), b);
  await w.finish();
}

async function readAll(path: string): Promise<{ meta: ArchivedModel; instance: Buffer }[]> {
  const r = await ArchiveReader.open(path);
  try {
    const out = [];
    for await (const m of r.models()) out.push(m);
    return out;
  } finally {
    await r.close();
  }
}

const models: [number, Buffer][] = [
  [1, Buffer.alloc(0)],
  [2, Buffer.from('hello')],
  [7, randomBytes(512)],
  [12, randomBytes(100_003)],
];

describe('export archive', () => {
  it('round-trips metadata and bytes, and appears only when complete', async () => {
    const path = join(dir, 'a.tar');
    await write(path, models);
    assert.equal(existsSync(`${path}.partial`), false);
    const back = await readAll(path);
    assert.deepEqual(
      back.map((m) => [m.meta.instance_id, m.instance.toString('hex')]),
      models.map(([id, b]) => [id, b.toString('hex')]),
    );
  });

  it('is a tar file that tar lists', {
    skip: spawnSync('tar', ['--version']).error !== undefined,
  }, async () => {
    const path = join(dir, 'b.tar');
    await write(path, models.slice(0, 2));
    const r = spawnSync('tar', ['-tf', path], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'aimm-store-export.json',
      'models/1.json',
      'models/1.bin',
      'models/2.json',
      'models/2.bin',
      'end.json',
    ]);
  });

  it('refuses a truncated archive, naming where it ends', async () => {
    const path = join(dir, 'c.tar');
    await write(path, models);
    const full = readFileSync(path).length;
    for (const cut of [full - 1530, full - 60_000, 700]) {
      const p = join(dir, `c-${cut}.tar`);
      writeFileSync(p, readFileSync(path).subarray(0, cut));
      await assert.rejects(readAll(p), (err: Error) => {
        assert.ok(err instanceof ArchiveError, String(err));
        assert.match(err.message, /truncated|end\.json/);
        return true;
      });
    }
    truncateSync(path, 0);
    await assert.rejects(ArchiveReader.open(path), ArchiveError);
  });

  it('refuses damaged bytes (SHA-256) and a damaged header, naming the entry', async () => {
    const path = join(dir, 'd.tar');
    await write(path, models);
    const bytes = readFileSync(path);
    const at = bytes.indexOf(models[3]?.[1].subarray(0, 64) as Buffer);
    const damaged = Buffer.from(bytes);
    damaged[at + 10] = (damaged[at + 10] as number) ^ 0xff;
    writeFileSync(path, damaged);
    await assert.rejects(readAll(path), /models\/12\.bin: SHA-256 mismatch/);
    const header = Buffer.from(bytes);
    header[1034] = (header[1034] as number) ^ 0x01; // the second entry's header (name field)
    writeFileSync(path, header);
    await assert.rejects(readAll(path), /damaged header/);
  });

  it('refuses a file that is not an export', async () => {
    const path = join(dir, 'e.tar');
    writeFileSync(path, Buffer.alloc(4096, 0x41));
    await assert.rejects(ArchiveReader.open(path), ArchiveError);
    await assert.rejects(ArchiveReader.open(join(dir, 'missing.tar')), /cannot open archive/);
  });
});
