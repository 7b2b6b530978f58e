/** Order statistics shared by the benchmarks. */

/** The value at rank ⌊p/100 · n⌋ of the sorted values (the largest for p = 100); NaN for none. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

/** The middle value (the upper of the two middle ones for an even count); NaN for none. */
export function median(xs: number[]): number {
  return percentile(xs, 50);
}
