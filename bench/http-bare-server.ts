/**
 * The baseline of `bench/http.ts`: a bare `node:http` server (no framework, no checks) that stores
 * a `PUT /models/{id}` body with `fs.writeFile` into a temp folder (`--fsync`: open, write,
 * fdatasync, close, as durable as the sqlite backend's commit) and answers `GET /models/{id}`
 * with the file's bytes (`DELETE` unlinks the file). Prints `listening <port>` once it listens.
 */
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

const dir = process.argv[2] as string;
const fsync = process.argv.includes('--fsync');

async function store(path: string, body: Buffer): Promise<void> {
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
      store(path, Buffer.concat(chunks)).then(
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
    rm(path, { force: true }).then(
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
  readFile(path).then(
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
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
