/** mulberry32: a tiny, fast, seedable 32-bit generator. Good enough for synthetic images. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform floats in [0, 1) from a 32-bit generator. */
export const uniform = (next: () => number): (() => number) => () => next() / 4294967296;

/** A table of standard normal samples (Box-Muller); indexing it at random is far cheaper than sampling. */
export function gaussianTable(next: () => number, size: number): Float32Array {
  const rand = uniform(next);
  const table = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    const u = 1 - rand();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * rand();
    table[i] = r * Math.cos(theta);
    if (i + 1 < size) table[i + 1] = r * Math.sin(theta);
  }
  return table;
}
