/** One HTTP `PUT` of raw bytes for the benchmarks that upload models to a daemon. */
import { type Agent, request } from 'node:http';

/** PUTs `body` to `path` on 127.0.0.1:`port`; rejects on a status ≥ 300, naming it and the body. */
export function httpPut(agent: Agent, port: number, path: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path,
        agent,
        headers: { 'Content-Length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 300)
            reject(new Error(`PUT ${path}: ${res.statusCode} ${Buffer.concat(chunks)}`));
          else resolve();
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
