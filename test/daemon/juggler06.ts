/**
 * A raw Juggler client speaking hat-juggler 0.6 framing (one JSON message per WebSocket text
 * message), as AIMM's own client does: enough to drive writes against the daemon in tests.
 */
import { WebSocket } from 'ws';

interface Response {
  type: 'response';
  id: number;
  success: boolean;
  data: unknown;
}

export class Juggler06 {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: Response) => void; reject: (e: Error) => void }
  >();
  readonly closed: Promise<void>;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      let msg: { type?: string; id?: number };
      try {
        msg = JSON.parse(String(data)) as { type?: string; id?: number };
      } catch {
        return;
      }
      if (msg.type !== 'response' || typeof msg.id !== 'number') return;
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      p?.resolve(msg as Response);
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', () => {
        for (const p of this.pending.values()) p.reject(new Error('connection closed'));
        this.pending.clear();
        resolve();
      });
    });
    ws.on('error', () => {});
  }

  static connect(port: number): Promise<Juggler06> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      ws.once('open', () => resolve(new Juggler06(ws)));
      ws.once('error', reject);
    });
  }

  request(name: string, data: unknown): Promise<Response> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error('connection closed'));
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ type: 'request', id, name, data }), (err) => {
        if (err) {
          this.pending.delete(id);
          reject(err);
        }
      });
    });
  }

  close(): void {
    this.ws.close();
  }
}
