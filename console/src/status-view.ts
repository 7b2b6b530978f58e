/** The daemon's status: `/readyz` (backend, Hat connection, redundancy) and the rate chart. */
import { ApiError, request } from './api.js';
import { h, setChildren } from './dom.js';
import { operationTotals, RateSeries, rateChart } from './metrics.js';

/** How often /readyz and /metrics are polled. */
export const POLL_MS = 5000;

export class StatusPoller {
  readonly rates = new RateSeries(120);
  readyz: Record<string, unknown> | null = null;
  metricsError: string | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly listeners = new Set<() => void>();

  start(): void {
    if (this.timer !== null) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  onUpdate(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private async poll(): Promise<void> {
    try {
      const res = await fetch('/readyz', { cache: 'no-store', credentials: 'omit' });
      this.readyz = (await res.json()) as Record<string, unknown>;
    } catch (err) {
      this.readyz = { ready: false, detail: `no answer: ${String(err)}` };
    }
    try {
      const text = await (await request('/metrics')).text();
      this.rates.add(Date.now(), operationTotals(text));
      this.metricsError = null;
    } catch (err) {
      this.metricsError = err instanceof ApiError ? err.message : String(err);
    }
    for (const f of this.listeners) f();
  }
}

export class StatusView {
  readonly root: HTMLElement;
  private readonly body: HTMLDivElement;
  private off: (() => void) | null = null;

  constructor(private readonly poller: StatusPoller) {
    this.body = h('div', {}, 'Loading…');
    this.root = h(
      'section',
      { class: 'status-view', 'aria-labelledby': 'status-title' },
      h('h1', { id: 'status-title' }, 'Status'),
      this.body,
    );
  }

  mount(): void {
    this.off = this.poller.onUpdate(() => this.render());
    this.render();
  }

  unmount(): void {
    this.off?.();
  }

  private render(): void {
    const r = this.poller.readyz;
    if (r === null) return;
    const rows: [string, string][] = [['Ready', r.ready === true ? 'yes' : 'no']];
    if (typeof r.detail === 'string') rows.push(['Backend', r.detail]);
    if (typeof r.connected === 'boolean')
      rows.push(['Hat connection', r.connected ? 'connected' : 'disconnected']);
    if (typeof r.role === 'string') {
      rows.push(['Role', r.role], ['Group', String(r.group)]);
      const monitor = r.monitor as { address?: string; connected?: boolean } | undefined;
      if (monitor !== undefined)
        rows.push([
          'Monitor',
          `${monitor.address ?? '?'} (${monitor.connected ? 'connected' : 'disconnected'})`,
        ]);
      const active = r.active as {
        name?: string | null;
        self?: boolean;
        http?: string | null;
      } | null;
      rows.push([
        'Active instance',
        active === null || active === undefined
          ? 'none (handover)'
          : `${active.name ?? '?'}${active.self ? ' (this daemon)' : ''}${active.http ? ` at ${active.http}` : ''}`,
      ]);
      const es = r.event_server as { address?: string; name?: string | null } | null;
      rows.push(['Event server', es ? `${es.name ?? '?'} at ${es.address ?? '?'}` : 'none']);
    }
    const last = this.poller.rates.points.at(-1);
    setChildren(
      this.body,
      h('dl', { class: 'status' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('h2', { id: 'rates-title' }, 'Operations per second'),
      h(
        'p',
        { class: 'legend' },
        h('span', { class: 'key writes' }, 'writes'),
        ` ${last === undefined ? '—' : last.writes.toFixed(1)}/s · `,
        h('span', { class: 'key reads' }, 'reads'),
        ` ${last === undefined ? '—' : last.reads.toFixed(1)}/s (sampled every ${POLL_MS / 1000} s)`,
      ),
      this.poller.metricsError !== null &&
        h('p', { class: 'message error' }, `Metrics: ${this.poller.metricsError}`),
      rateChart(this.poller.rates.points),
    );
  }
}
