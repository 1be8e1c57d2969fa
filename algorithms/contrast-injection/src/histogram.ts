/** A fixed-range histogram of per-cell changes (log units), reused frame after frame. */
export class ChangeHistogram {
  static readonly RANGE = 1.5;
  static readonly BINS = 6000;
  private readonly counts = new Uint32Array(ChangeHistogram.BINS);
  private readonly scale = ChangeHistogram.BINS / (2 * ChangeHistogram.RANGE);
  private total = 0;
  private sum = 0;

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
  }

  add(change: number): void {
    const bin = Math.floor((change + ChangeHistogram.RANGE) * this.scale);
    this.counts[bin < 0 ? 0 : bin >= ChangeHistogram.BINS ? ChangeHistogram.BINS - 1 : bin]!++;
    this.total++;
    this.sum += change;
  }

  /**
   * (median - mean of the lowest share) - (mean of the highest share - median): zero for
   * any symmetric spread of changes, positive when the low tail reaches further.
   */
  tailAsymmetry(share: number): number {
    const count = Math.max(1, Math.round(this.total * share));
    const median = this.median();
    return median - this.tailMean(count, 1) - (this.tailMean(count, -1) - median);
  }

  /** median - mean: how far the changes as a whole lean towards darkening. */
  skew(): number {
    return this.total === 0 ? 0 : this.median() - this.sum / this.total;
  }

  /** Interpolated within its bin. */
  median(): number {
    const rank = this.total / 2;
    let seen = 0;
    for (let bin = 0; bin < ChangeHistogram.BINS; bin++) {
      const count = this.counts[bin]!;
      if (seen + count >= rank) return (bin + (rank - seen) / Math.max(1, count)) / this.scale - ChangeHistogram.RANGE;
      seen += count;
    }
    return ChangeHistogram.RANGE;
  }

  private tailMean(count: number, direction: 1 | -1): number {
    let taken = 0;
    let sum = 0;
    for (let k = 0; k < ChangeHistogram.BINS && taken < count; k++) {
      const bin = direction === 1 ? k : ChangeHistogram.BINS - 1 - k;
      const use = Math.min(this.counts[bin]!, count - taken);
      taken += use;
      sum += use * ((bin + 0.5) / this.scale - ChangeHistogram.RANGE);
    }
    return taken === 0 ? 0 : sum / taken;
  }
}
