/** Log-binned histogram of waits: 0 ms, then 100 bins per decade from 1 ms to 10^7 ms, then infinity. */
export class WaitHistogram {
  static readonly PER_DECADE = 100;
  static readonly DECADES = 7;
  readonly #bins = new Float64Array(WaitHistogram.PER_DECADE * WaitHistogram.DECADES + 2);
  #count = 0;

  add(waitMs: number): void {
    this.#count += 1;
    const last = this.#bins.length - 1;
    let bin: number;
    if (waitMs < 1) bin = 0;
    else if (!Number.isFinite(waitMs)) bin = last;
    else bin = Math.min(last - 1, 1 + Math.floor(Math.log10(waitMs) * WaitHistogram.PER_DECADE));
    this.#bins[bin] = (this.#bins[bin] ?? 0) + 1;
  }

  get count(): number {
    return this.#count;
  }

  /** Upper edge of the bin holding quantile q, ms (0 for the zero bin, Infinity for unfinished). */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = q * this.#count;
    let seen = 0;
    for (let i = 0; i < this.#bins.length; i += 1) {
      seen += this.#bins[i] ?? 0;
      if (seen >= rank) {
        if (i === 0) return 0;
        if (i === this.#bins.length - 1) return Infinity;
        return 10 ** (i / WaitHistogram.PER_DECADE);
      }
    }
    return Infinity;
  }
}
