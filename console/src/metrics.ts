/**
 * Write and read rates from `/metrics`: the counters `aimm_store_operations_total{op,result}`
 * sampled every few seconds; a rate is the difference of two samples over their interval.
 */
export const WRITE_OPS: ReadonlySet<string> = new Set(['create', 'update', 'delete', 'rollback']);
export const READ_OPS: ReadonlySet<string> = new Set(['list', 'get', 'history', 'revision']);

/** Sums of the operation counters: [writes, reads]. */
export function operationTotals(text: string): { writes: number; reads: number } {
  let writes = 0;
  let reads = 0;
  const re = /^aimm_store_operations_total\{([^}]*)\}\s+([0-9.eE+-]+)/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const op = /(?:^|,)op="([^"]*)"/.exec(m[1] as string)?.[1];
    const v = Number(m[2]);
    if (op === undefined || !Number.isFinite(v)) continue;
    if (WRITE_OPS.has(op)) writes += v;
    else if (READ_OPS.has(op)) reads += v;
  }
  return { writes, reads };
}

export interface RatePoint {
  /** ms since the epoch */
  t: number;
  writes: number;
  reads: number;
}

/** Keeps the last `keep` rate points from successive samples. */
export class RateSeries {
  readonly points: RatePoint[] = [];
  private last: { t: number; writes: number; reads: number } | null = null;

  constructor(private readonly keep = 120) {}

  add(t: number, totals: { writes: number; reads: number }): void {
    const last = this.last;
    this.last = { t, ...totals };
    if (last === null || t <= last.t) return;
    const dt = (t - last.t) / 1000;
    // A counter that went down: the daemon restarted; start over from this sample.
    if (totals.writes < last.writes || totals.reads < last.reads) return;
    this.points.push({
      t,
      writes: (totals.writes - last.writes) / dt,
      reads: (totals.reads - last.reads) / dt,
    });
    if (this.points.length > this.keep) this.points.shift();
  }
}

/** A small inline SVG line chart of the two rates. */
export function rateChart(points: RatePoint[], width = 560, height = 160): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  const last = points[points.length - 1];
  svg.setAttribute(
    'aria-label',
    last === undefined
      ? 'Rates: no samples yet'
      : `Rates over the last ${points.length} samples: now ${last.writes.toFixed(1)} writes/s and ${last.reads.toFixed(1)} reads/s`,
  );
  const pad = { l: 44, r: 8, t: 8, b: 20 };
  const max = Math.max(1, ...points.map((p) => Math.max(p.writes, p.reads)));
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const el = (tag: string, attrs: Record<string, string>, text?: string) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  el('line', {
    x1: `${pad.l}`,
    y1: `${pad.t + hgt}`,
    x2: `${pad.l + w}`,
    y2: `${pad.t + hgt}`,
    class: 'axis',
  });
  el('line', {
    x1: `${pad.l}`,
    y1: `${pad.t}`,
    x2: `${pad.l}`,
    y2: `${pad.t + hgt}`,
    class: 'axis',
  });
  el('text', { x: `${pad.l - 4}`, y: `${pad.t + 10}`, 'text-anchor': 'end' }, formatRate(max));
  el('text', { x: `${pad.l - 4}`, y: `${pad.t + hgt}`, 'text-anchor': 'end' }, '0');
  const first = points[0];
  if (first !== undefined && last !== undefined) {
    const span = Math.max(1, last.t - first.t);
    el(
      'text',
      { x: `${pad.l}`, y: `${height - 4}` },
      `${Math.round(span / 60000) || '<1'} min ago`,
    );
    el('text', { x: `${pad.l + w}`, y: `${height - 4}`, 'text-anchor': 'end' }, 'now');
    for (const key of ['reads', 'writes'] as const) {
      const d = points
        .map((p) => {
          const x = pad.l + (points.length === 1 ? w : ((p.t - first.t) / span) * w);
          const y = pad.t + hgt - (p[key] / max) * hgt;
          return `${x.toFixed(1)},${y.toFixed(1)}`;
        })
        .join(' ');
      el('polyline', { points: d, class: `series ${key}` });
    }
  }
  return svg;
}

function formatRate(v: number): string {
  return `${v >= 10 ? Math.round(v) : v.toFixed(1)}/s`;
}
