/**
 * `GET /changes` read with fetch and a stream reader (an EventSource cannot send the
 * Authorization header): the Server-Sent Events parser, and a loop that reconnects after the
 * server's `retry`, resuming with `Last-Event-ID`.
 */
import { authHeaders } from './api.js';

export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

/** Parses an event stream chunk by chunk (text/event-stream, WHATWG HTML 9.2.6). */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | null = null;
  retry: number | null = null;
  lastId: string | null = null;

  push(text: string, emit: (e: SseEvent) => void): void {
    this.buffer += text;
    let nl = this.buffer.search(/\r\n|\r|\n/);
    while (nl >= 0) {
      const line = this.buffer.slice(0, nl);
      const skip = this.buffer.startsWith('\r\n', nl) ? 2 : 1;
      this.buffer = this.buffer.slice(nl + skip);
      this.line(line, emit);
      nl = this.buffer.search(/\r\n|\r|\n/);
    }
  }

  private line(line: string, emit: (e: SseEvent) => void): void {
    if (line === '') {
      if (this.id !== null) this.lastId = this.id;
      if (this.data.length > 0)
        emit({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      this.event = '';
      this.data = [];
      this.id = null;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

export interface StreamHandlers {
  onEvent(e: SseEvent): void;
  /** Connected (true) or lost (false, with why). */
  onState(connected: boolean, why?: string): void;
  /** 401: stop, the page asks for a login. */
  onUnauthorized(): void;
}

/** Follows /changes until `signal` aborts; reconnects with Last-Event-ID. */
export async function followChanges(signal: AbortSignal, handlers: StreamHandlers): Promise<void> {
  let lastId: string | null = null;
  let retry = 2000;
  while (!signal.aborted) {
    const parser = new SseParser();
    try {
      const extra: Record<string, string> = { Accept: 'text/event-stream' };
      if (lastId !== null) extra['Last-Event-ID'] = lastId;
      const res = await fetch('/changes', {
        headers: authHeaders(extra),
        signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      if (res.status === 401) {
        handlers.onUnauthorized();
        return;
      }
      if (!res.ok || res.body === null) throw new Error(`GET /changes: ${res.status}`);
      handlers.onState(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value, handlers.onEvent);
        if (parser.retry !== null) retry = parser.retry;
        if (parser.lastId !== null) lastId = parser.lastId;
      }
      handlers.onState(false, 'the change stream ended');
    } catch (err) {
      if (signal.aborted) return;
      handlers.onState(false, err instanceof Error ? err.message : String(err));
    }
    await new Promise((r) => setTimeout(r, Math.max(retry, 250)));
  }
}
