/**
 * The baseline of `bench/http.ts`: a bare `node:http` server (no framework, no checks) that stores
 * a `PUT /models/{id}` body with `fs.writeFile` into a temp folder (`--fsync`: open, write,
 * fdatasync, close, as durable as the sqlite backend's commit) and answers `GET /models/{id}`
 * with the file's bytes (`DELETE` unlinks the file). `--sqlite`: the body goes into AIMM's
 * `models` table of a SQLite file in that folder instead, as the sqlite backend opens it (WAL,
 * `synchronous = FULL`, exclusive lock) but with nothing else (no hash, no metadata, no
 * triggers, one autocommit statement): what SQLite alone costs. Prints `listening <port>`.
 */
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const dir = process.argv[2] as string;
const fsync = process.argv.includes('--fsync');
const db = process.argv.includes('--sqlite') ? openSqlite(join(dir, 'models.db')) : null;

function openSqlite(path: string) {
  const d = new Database(path);
  d.pragma('locking_mode = EXCLUSIVE');
  d.pragma('journal_mode = WAL');
  d.pragma('synchronous = FULL');
  d.exec(
    'CREATE TABLE models (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, instance BLOB)',
  );
  return {
    put: d.prepare("INSERT OR REPLACE INTO models (id, type, instance) VALUES (?, 'bench', ?)"),
    get: d.prepare('SELECT instance FROM models WHERE id = ?').pluck(),
    delete: d.prepare('DELETE FROM models WHERE id = ?'),
  };
}

async function store(path: string, body: Buffer, id: number): Promise<void> {
  if (db !== null) {
    db.put.run(id, body);
    return;
  }
  if (!fsync) return writeFile(path, body);
  const fh = await open(path, 'w');
  try {
    await fh.write(body);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

const server = createServer({ requestTimeout: 0 }, (req, res) => {
  const id = (req.url ?? '').split('?')[0]?.slice('/models/'.length) ?? '';
  const path = join(dir, `m-${Number(id)}`);
  if (req.method === 'PUT') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      store(path, Buffer.concat(chunks), Number(id)).then(
        () => {
          res.writeHead(200, { 'Content-Length': '2' });
          res.end('ok');
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
    return;
  }
  if (req.method === 'DELETE') {
    (db === null ? rm(path, { force: true }) : Promise.resolve(db.delete.run(Number(id)))).then(
      () => {
        res.writeHead(204);
        res.end();
      },
      () => {
        res.writeHead(500);
        res.end();
      },
    );
    return;
  }
  (db === null ? readFile(path) : fromSqlite(Number(id))).then(
    (b) => {
      res.writeHead(200, { 'Content-Length': String(b.length) });
      res.end(b);
    },
    () => {
      res.writeHead(404);
      res.end();
    },
  );
});
async function fromSqlite(id: number): Promise<Buffer> {
  const b = db?.get.get(id) as Buffer | undefined;
  if (b === undefined) throw new Error('no such model');
  return b;
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
