/** How far back the meter looks: long enough for a few segments, short enough to follow a link that changes. */
const WINDOW_MS = 20_000;
/** Below this many bytes in the window, the link is not known (a header or two say little). */
const MIN_BYTES = 4 * 2 ** 20;

interface Sample {
  startMs: number;
  endMs: number;
  bytes: number;
}

/**
 * What the uplink carried lately: bytes of completed uploads per second of time during
 * which at least one upload was on its way (uploads running side by side share the link,
 * so their intervals are merged, not added). Compressed bytes count as what they are on
 * the wire, so the figure stays the link's whether or not segments are compressed.
 */
export class LinkMeter {
  readonly #samples: Sample[] = [];
  readonly #windowMs: number;
  readonly #minBytes: number;

  constructor(windowMs = WINDOW_MS, minBytes = MIN_BYTES) {
    this.#windowMs = windowMs;
    this.#minBytes = minBytes;
  }

  /** An upload of `bytes` that ran from `startMs` to `endMs` (performance.now()). */
  record(bytes: number, startMs: number, endMs: number): void {
    this.#samples.push({ startMs, endMs: Math.max(endMs, startMs), bytes });
    this.#forget(endMs);
  }

  /** Bytes per second over the window; undefined until enough was measured. */
  bytesPerSecond(nowMs = performance.now()): number | undefined {
    this.#forget(nowMs);
    const bytes = this.#samples.reduce((n, s) => n + s.bytes, 0);
    if (bytes < this.#minBytes) return undefined;
    // The union of the uploads' intervals: in order of start, each adds what it runs past the ones before.
    let busyMs = 0;
    let coveredTo = -Infinity;
    for (const s of [...this.#samples].sort((a, b) => a.startMs - b.startMs)) {
      busyMs += Math.max(0, s.endMs - Math.max(s.startMs, coveredTo));
      coveredTo = Math.max(coveredTo, s.endMs);
    }
    return busyMs > 0 ? (bytes * 1000) / busyMs : undefined;
  }

  #forget(nowMs: number): void {
    while (this.#samples.length > 0 && this.#samples[0]!.endMs < nowMs - this.#windowMs) this.#samples.shift();
  }
}
