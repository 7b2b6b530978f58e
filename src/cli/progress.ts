/**
 * Progress of a long command on stderr: on a terminal, one line redrawn in place (a bar, models,
 * bytes, rate and ETA); otherwise a plain line every few seconds and at the end, fit for logs.
 */
const LOG_EVERY_MS = 5000;
const REDRAW_EVERY_MS = 100;

export class Progress {
  private readonly started = Date.now();
  private last = 0;
  private shown = false;

  constructor(
    private readonly label: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, bytes: number, total: number | null): void {
    const now = Date.now();
    const tty = this.out.isTTY === true;
    if (now - this.last < (tty ? REDRAW_EVERY_MS : LOG_EVERY_MS) && done !== total) return;
    this.last = now;
    const text = this.line(done, bytes, total, now);
    if (tty) {
      this.out.write(
        `\r${text.padEnd(this.out.columns ? this.out.columns - 1 : 79).slice(0, (this.out.columns ?? 80) - 1)}`,
      );
      this.shown = true;
    } else {
      this.out.write(`${text}\n`);
    }
  }

  /** Ends the redrawn line (on a terminal). */
  finish(): void {
    if (this.shown) this.out.write('\n');
    this.shown = false;
  }

  private line(done: number, bytes: number, total: number | null, now: number): string {
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = done / seconds;
    const parts = [this.label];
    if (total !== null && total > 0) {
      const width = 20;
      const filled = Math.round((Math.min(done, total) / total) * width);
      parts.push(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`, `${done}/${total} models`);
    } else {
      parts.push(`${done} models`);
    }
    parts.push(formatBytes(bytes), `${rate.toFixed(rate < 10 ? 1 : 0)}/s`);
    if (total !== null && total > done && rate > 0)
      parts.push(`ETA ${formatSeconds((total - done) / rate)}`);
    return parts.join('  ');
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Bytes of one upload or download on a terminal's stderr (nothing elsewhere, nothing for small
 * transfers): `label  [####......]  12.0/48.0 MiB  30.1 MiB/s  ETA 2s`.
 */
export class ByteProgress {
  private readonly started = Date.now();
  private last = 0;
  private shown = false;

  constructor(
    private readonly label: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly minBytes = 1024 * 1024,
  ) {}

  update(done: number, total: number | null): void {
    if (this.out.isTTY !== true || (total ?? done) < this.minBytes) return;
    const now = Date.now();
    if (now - this.last < REDRAW_EVERY_MS && done !== total) return;
    this.last = now;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = done / seconds;
    const parts = [this.label];
    if (total !== null && total > 0) {
      const filled = Math.round((Math.min(done, total) / total) * 20);
      parts.push(
        `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}]`,
        `${formatBytes(done)}/${formatBytes(total)}`,
      );
    } else parts.push(formatBytes(done));
    parts.push(`${formatBytes(rate)}/s`);
    if (total !== null && total > done && rate > 0)
      parts.push(`ETA ${formatSeconds((total - done) / rate)}`);
    const width = (this.out.columns ?? 80) - 1;
    this.out.write(`\r${parts.join('  ').padEnd(width).slice(0, width)}`);
    this.shown = true;
  }

  finish(): void {
    if (this.shown) this.out.write('\n');
    this.shown = false;
  }
}
