/**
 * A small Server-Sent Events reader for tests: parses the stream as the WHATWG spec's
 * EventSource does (fields `event`, `data`, `id`, `retry`, comments; CRLF, LF or CR line ends; the
 * last event id carried over events without an `id`) and lets a test wait for events by predicate.
 */
import { type ClientRequest, type IncomingMessage, request } from 'node:http';

export interface SseEvent {
  event: string;
  data: string;
  /** The `id` field of this event, if it had one. */
  id?: string;
  /** The client's last event id after this event (what a reconnect would send). */
  lastEventId: string;
}

export class SseParser {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retry: number | null = null;
  lastEventId = '';
  private partial = '';
  private event = '';
  private data: string[] = [];
  private id: string | undefined;

  /** Feeds a chunk of text; returns the events it completed. */
  push(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    const lines = (this.partial + text).split(/\r\n|\r|\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') {
        if (this.id !== undefined) this.lastEventId = this.id;
        if (this.data.length > 0) {
          const e: SseEvent = {
            event: this.event === '' ? 'message' : this.event,
            data: this.data.join('\n'),
            lastEventId: this.lastEventId,
          };
          if (this.id !== undefined) e.id = this.id;
          out.push(e);
        }
        this.event = '';
        this.data = [];
        this.id = undefined;
        continue;
      }
      if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trimStart());
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
      else if (field === 'id' && !value.includes('\0')) this.id = value;
      else if (field === 'retry' && /^[0-9]+$/.test(value)) this.retry = Number(value);
    }
    this.events.push(...out);
    return out;
  }
}

/** An open `GET` of an event stream. */
export class SseClient {
  readonly parser = new SseParser();
  response: IncomingMessage | null = null;
  ended = false;
  private req!: ClientRequest;
  private waiters: (() => void)[] = [];
  readonly opened: Promise<IncomingMessage>;

  constructor(port: number, path: string, headers: Record<string, string> = {}) {
    this.opened = new Promise((resolve, reject) => {
      this.req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
        this.response = res;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          this.parser.push(chunk);
          this.wake();
        });
        const end = () => {
          this.ended = true;
          this.wake();
        };
        res.on('end', end);
        res.on('close', end);
        res.on('error', end);
        resolve(res);
      });
      this.req.on('error', (err) => {
        this.ended = true;
        this.wake();
        reject(err);
      });
      this.req.end();
    });
  }

  get events(): SseEvent[] {
    return this.parser.events;
  }

  /** Resolves once `pred` holds over the events so far; rejects if the stream ends first. */
  async until(pred: (events: SseEvent[]) => boolean, what = 'events'): Promise<SseEvent[]> {
    await this.opened;
    for (;;) {
      if (pred(this.events)) return this.events;
      if (this.ended) {
        throw new Error(`stream ended before ${what}; got ${JSON.stringify(this.events)}`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Resolves once an event named `name` has arrived; returns it. */
  async next(name: string, after = 0): Promise<SseEvent> {
    const events = await this.until(
      (es) => es.slice(after).some((e) => e.event === name),
      `a '${name}' event`,
    );
    return events.slice(after).find((e) => e.event === name) as SseEvent;
  }

  /** Resolves once the server ended the stream. */
  async whenEnded(): Promise<void> {
    await this.opened.catch(() => {});
    while (!this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.req.destroy();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}
