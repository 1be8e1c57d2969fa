/** Min-heap of (time, id) pairs in typed arrays: the simulator's hot path. */
export class TimedHeap {
  #times = new Float64Array(64);
  #ids = new Int32Array(64);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Earliest time, +Infinity when empty. */
  get topTime(): number {
    return this.#size > 0 ? (this.#times[0] ?? Infinity) : Infinity;
  }

  get topId(): number {
    return this.#ids[0] ?? -1;
  }

  idAt(index: number): number {
    return this.#ids[index] ?? -1;
  }

  push(time: number, id: number): void {
    if (this.#size === this.#times.length) {
      const times = new Float64Array(this.#size * 2);
      times.set(this.#times);
      const ids = new Int32Array(this.#size * 2);
      ids.set(this.#ids);
      this.#times = times;
      this.#ids = ids;
    }
    this.#up(this.#size++, time, id);
  }

  /** Removes the entry at `index` (0 = the top). */
  removeAt(index: number): void {
    const last = --this.#size;
    if (index === last) return;
    const time = this.#times[last] ?? 0;
    const id = this.#ids[last] ?? 0;
    const parent = (index - 1) >> 1;
    if (index > 0 && time < (this.#times[parent] ?? 0)) this.#up(index, time, id);
    else this.#down(index, time, id);
  }

  /** Index of the latest entry (linear scan; used rarely). */
  indexOfMax(): number {
    let best = -1;
    let bestTime = -Infinity;
    for (let i = 0; i < this.#size; i += 1) {
      const t = this.#times[i] ?? 0;
      if (t >= bestTime) {
        bestTime = t;
        best = i;
      }
    }
    return best;
  }

  #up(index: number, time: number, id: number): void {
    const times = this.#times;
    const ids = this.#ids;
    let i = index;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = times[p] ?? 0;
      if (pt <= time) break;
      times[i] = pt;
      ids[i] = ids[p] ?? 0;
      i = p;
    }
    times[i] = time;
    ids[i] = id;
  }

  #down(index: number, time: number, id: number): void {
    const times = this.#times;
    const ids = this.#ids;
    const n = this.#size;
    let i = index;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (times[r] ?? 0) < (times[c] ?? 0)) c = r;
      const ct = times[c] ?? 0;
      if (ct >= time) break;
      times[i] = ct;
      ids[i] = ids[c] ?? 0;
      i = c;
    }
    times[i] = time;
    ids[i] = id;
  }
}
