/**
 * One large buffer kept for reuse. A large transient buffer (a Hat frame, a register request, a
 * joined Juggler message) then needs no fresh memory when the next one fits in the last one's,
 * and leaves no garbage for V8's next collection (which a growth of external memory starts only
 * after tens of MiB). The buffer is let go `ttlMs` after it was kept, so an idle process holds
 * none.
 */
export class SpareBuffer {
  private buf: Buffer | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly ttlMs = 1000) {}

  /** Bytes of the buffer kept (0: none). */
  get bytes(): number {
    return this.buf === null ? 0 : this.buf.length;
  }

  /**
   * Keeps `buf` for reuse, unless a buffer at least as large is kept already. The caller gives it
   * up: neither it nor any view of it may be used once it is kept.
   */
  keep(buf: Buffer): void {
    if (this.buf !== null && this.buf.length >= buf.length) return;
    this.buf = buf;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.drop(), this.ttlMs);
    this.timer.unref();
  }

  /** The kept buffer, whole, when it holds at least `bytes` (it is then no longer kept); else null. */
  take(bytes: number): Buffer | null {
    const buf = this.buf;
    if (buf === null || buf.length < bytes) return null;
    this.drop();
    return buf;
  }

  /** Lets go of the kept buffer (it becomes garbage). */
  drop(): void {
    this.buf = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
