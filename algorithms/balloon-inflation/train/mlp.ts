/**
 * A two-layer perceptron (inputs -> hidden ReLU -> sigmoid) trained with Adam on binary
 * cross-entropy, on plain typed arrays: small enough that a 2-core machine trains it in
 * seconds, and exported as Gemm/Relu/Sigmoid to ONNX.
 */
export interface Mlp {
  inputs: number;
  hidden: number;
  /** hidden x inputs, row-major (Gemm weight with transB = 1). */
  w1: Float32Array;
  b1: Float32Array;
  /** 1 x hidden. */
  w2: Float32Array;
  b2: Float32Array;
}

export function createMlp(inputs: number, hidden: number, rand: () => number): Mlp {
  const scale = Math.sqrt(2 / inputs);
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return {
    inputs,
    hidden,
    w1: Float32Array.from({ length: hidden * inputs }, () => normal() * scale),
    b1: new Float32Array(hidden),
    w2: Float32Array.from({ length: hidden }, () => normal() * Math.sqrt(1 / hidden)),
    b2: new Float32Array(1),
  };
}

/** Probability for each of the `count` samples in `x` (count x inputs). */
export function predict(model: Mlp, x: Float32Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const h = new Float32Array(model.hidden);
  for (let n = 0; n < count; n++) out[n] = forward(model, x, n * model.inputs, h);
  return out;
}

function forward(m: Mlp, x: Float32Array, offset: number, h: Float32Array): number {
  let z = m.b2[0]!;
  for (let j = 0; j < m.hidden; j++) {
    let s = m.b1[j]!;
    const row = j * m.inputs;
    for (let i = 0; i < m.inputs; i++) s += m.w1[row + i]! * x[offset + i]!;
    h[j] = s > 0 ? s : 0;
    z += m.w2[j]! * h[j]!;
  }
  return 1 / (1 + Math.exp(-z));
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  rand: () => number;
  /** Called with the sample's features before each use (data augmentation, in place). */
  augment?: (features: Float32Array) => void;
  onEpoch?: (epoch: number, loss: number) => void;
}

/** Adam on minibatches of binary cross-entropy; labels are 0 or 1 (or soft, in between). */
export function trainMlp(m: Mlp, x: Float32Array, y: Float32Array, options: TrainOptions): void {
  const count = y.length;
  const params = [m.w1, m.b1, m.w2, m.b2];
  const grads = params.map((p) => new Float32Array(p.length));
  const first = params.map((p) => new Float32Array(p.length));
  const second = params.map((p) => new Float32Array(p.length));
  const [gw1, gb1, gw2, gb2] = grads as [Float32Array, Float32Array, Float32Array, Float32Array];
  const order = Int32Array.from({ length: count }, (_, i) => i);
  const sample = new Float32Array(m.inputs);
  const h = new Float32Array(m.hidden);
  let step = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    shuffle(order, options.rand);
    let lossSum = 0;
    for (let start = 0; start < count; start += options.batchSize) {
      const end = Math.min(count, start + options.batchSize);
      for (const g of grads) g.fill(0);
      for (let k = start; k < end; k++) {
        const n = order[k]!;
        sample.set(x.subarray(n * m.inputs, (n + 1) * m.inputs));
        options.augment?.(sample);
        const p = forward(m, sample, 0, h);
        const label = y[n]!;
        lossSum -= label * Math.log(p + 1e-7) + (1 - label) * Math.log(1 - p + 1e-7);
        const dz = p - label;
        gb2[0]! += dz;
        for (let j = 0; j < m.hidden; j++) {
          gw2[j]! += dz * h[j]!;
          if (h[j]! <= 0) continue;
          const dh = dz * m.w2[j]!;
          gb1[j]! += dh;
          const row = j * m.inputs;
          for (let i = 0; i < m.inputs; i++) gw1[row + i]! += dh * sample[i]!;
        }
      }
      step++;
      const batch = end - start;
      const lr = (options.learningRate * Math.sqrt(1 - 0.999 ** step)) / (1 - 0.9 ** step);
      params.forEach((p, k) => {
        const g = grads[k]!;
        const m1 = first[k]!;
        const m2 = second[k]!;
        for (let i = 0; i < p.length; i++) {
          const gi = g[i]! / batch + options.weightDecay * p[i]!;
          m1[i] = 0.9 * m1[i]! + 0.1 * gi;
          m2[i] = 0.999 * m2[i]! + 0.001 * gi * gi;
          p[i]! -= (lr * m1[i]!) / (Math.sqrt(m2[i]!) + 1e-8);
        }
      });
    }
    options.onEpoch?.(epoch, lossSum / count);
  }
}

function shuffle(a: Int32Array, rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}
