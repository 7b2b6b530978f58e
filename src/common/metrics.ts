/**
 * A small Prometheus metrics registry: counters and gauges with low-cardinality labels, rendered in
 * the text exposition format (version 0.0.4). Every layer registers its own metrics through the
 * registry it is given; the HTTP control renders it.
 */

export type Labels = Readonly<Record<string, string>>;

interface Series {
  labels: Labels;
  value: number;
}

abstract class Metric {
  readonly series = new Map<string, Series>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}

  protected entry(labels: Labels): Series {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: { ...labels }, value: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  /** Current value of one series (0 when never touched). */
  get(labels: Labels = {}): number {
    return this.series.get(labelKey(labels))?.value ?? 0;
  }
}

/** One series of a counter, for a caller that counts it often: no label key is built per count. */
export interface CounterSeries {
  inc(by?: number): void;
}

export class Counter extends Metric {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new RangeError(`counter ${this.name} cannot decrease`);
    this.entry(labels).value += by;
  }
  /** The series of `labels` (rendered from now on, at 0 until counted: see {@link seriesBy}). */
  seriesOf(labels: Labels = {}): CounterSeries {
    const s = this.entry(labels);
    return {
      inc: (by = 1) => {
        if (by < 0) throw new RangeError(`counter ${this.name} cannot decrease`);
        s.value += by;
      },
    };
  }
}

/**
 * The series of `counter` by one value (an operation, a request name), each made on its first use,
 * so that a series appears only once counted and a count builds no label key. For hot paths; the
 * values must be few (each keeps its series).
 */
export function seriesBy<V extends string>(
  counter: Counter,
  labels: (value: V) => Labels,
): (value: V) => CounterSeries {
  const made = new Map<V, CounterSeries>();
  return (value) => {
    let s = made.get(value);
    if (s === undefined) {
      s = counter.seriesOf(labels(value));
      made.set(value, s);
    }
    return s;
  };
}

export class Gauge extends Metric {
  private collector: (() => number) | undefined;
  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }
  set(value: number, labels: Labels = {}): void {
    this.entry(labels).value = value;
  }
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels).value += by;
  }
  dec(labels: Labels = {}, by = 1): void {
    this.entry(labels).value -= by;
  }
  /** Reads the (unlabelled) value from a function at render time. */
  collect(fn: () => number): void {
    this.collector = fn;
  }
  /** @internal */
  refresh(): void {
    if (this.collector !== undefined) this.entry({}).value = this.collector();
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  constructor(private readonly prefix = 'aimm_store_') {}

  /** Registers (or returns the already registered) counter `<prefix><name>`. */
  counter(name: string, help: string): Counter {
    return this.register(name, () => new Counter(this.prefix + name, help), Counter);
  }

  /** Registers (or returns the already registered) gauge `<prefix><name>`. */
  gauge(name: string, help: string): Gauge {
    return this.register(name, () => new Gauge(this.prefix + name, help), Gauge);
  }

  /** The Prometheus text exposition of every metric. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.metrics.values()) {
      if (m instanceof Gauge) m.refresh();
      lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`);
      lines.push(`# TYPE ${m.name} ${m.type}`);
      if (m.series.size === 0 && !(m instanceof Gauge)) lines.push(`${m.name} 0`);
      for (const s of m.series.values())
        lines.push(`${m.name}${renderLabels(s.labels)} ${fmt(s.value)}`);
    }
    return `${lines.join('\n')}\n`;
  }

  private register<T extends Metric>(
    name: string,
    make: () => T,
    cls: new (...a: never[]) => T,
  ): T {
    const existing = this.metrics.get(name);
    if (existing !== undefined) {
      if (!(existing instanceof cls))
        throw new Error(`metric ${name} already registered as ${existing.type}`);
      return existing;
    }
    const m = make();
    this.metrics.set(name, m);
    return m;
  }
}

/** The series key of a label set (on every increment: no sorting or arrays for 0–2 labels). */
function labelKey(labels: Labels): string {
  let first: string | undefined;
  let second: string | undefined;
  let n = 0;
  for (const k in labels) {
    if (n === 0) first = k;
    else if (n === 1) second = k;
    n++;
  }
  if (n === 0) return '';
  const a = first as string;
  if (n === 1) return `${a}=${labels[a]}`;
  if (n === 2) {
    const b = second as string;
    return a < b ? `${a}=${labels[a]},${b}=${labels[b]}` : `${b}=${labels[b]},${a}=${labels[a]}`;
  }
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`).join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function fmt(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}
