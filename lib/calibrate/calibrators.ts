// Activation range calibrators. Statistics come in two passes over the
// calibration images: min/max, then (for the histogram methods) a histogram
// over the symmetric range [-A, A], A = max(|min|, |max|). Each method turns
// them into the [lo, hi] range an int8 asymmetric per-tensor quantizer uses.
//   minmax:     the observed range
//   percentile: the p-th percentile at each signed end (one-sided for non-negative tensors)
//   entropy:    the threshold minimizing KL(P‖Q) between the |x| histogram and its quantized version
//               (TensorRT's method, as in onnxruntime.quantization.calibrate)
//   mse:        the range minimizing the expected squared quantize-dequantize error

export type Method = 'minmax' | 'percentile' | 'entropy' | 'mse';
export const METHODS: Method[] = ['minmax', 'percentile', 'entropy', 'mse'];

export const HIST_BINS = 4096;

/** Running min / max / histogram of one tensor. */
export class TensorStats {
  min = Infinity;
  max = -Infinity;
  count = 0;
  hist: Float64Array | null = null;
  amax = 0;

  observeMinMax(d: ArrayLike<number>): void {
    let mn = this.min, mx = this.max;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    this.min = mn;
    this.max = mx;
    this.count += d.length;
  }

  /** Second pass: needs min/max from the first. */
  observeHistogram(d: ArrayLike<number>): void {
    if (!this.hist) {
      this.hist = new Float64Array(HIST_BINS);
      this.amax = Math.max(Math.abs(this.min), Math.abs(this.max));
    }
    const a = this.amax;
    if (a === 0) { this.hist[HIST_BINS >> 1] += d.length; return; }
    const k = HIST_BINS / (2 * a);
    const h = this.hist;
    for (let i = 0; i < d.length; i++) {
      let b = Math.floor((d[i] + a) * k);
      if (b < 0) b = 0; else if (b >= HIST_BINS) b = HIST_BINS - 1;
      h[b]++;
    }
  }
}

export interface Range { lo: number; hi: number }

export interface MethodOptions { percentile?: number }

export function needsHistogram(m: Method): boolean { return m !== 'minmax'; }

export function computeRange(s: TensorStats, method: Method, opts: MethodOptions = {}): Range {
  if (!(s.count > 0)) throw new Error('no statistics collected');
  const mm: Range = { lo: s.min, hi: s.max };
  if (method === 'minmax' || !s.hist || s.amax === 0) return mm;
  switch (method) {
    case 'percentile': return percentileRange(s, opts.percentile ?? 99.99);
    case 'entropy': return entropyRange(s);
    case 'mse': return mseRange(s);
    default: throw new Error(`unknown calibration method '${method as string}'`);
  }
}

function binCenter(s: TensorStats, i: number): number {
  return -s.amax + ((i + 0.5) * 2 * s.amax) / HIST_BINS;
}
function binEdge(s: TensorStats, i: number): number {
  return -s.amax + (i * 2 * s.amax) / HIST_BINS;
}

export function percentileRange(s: TensorStats, p: number): Range {
  if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got ${p}`);
  const h = s.hist!;
  let total = 0;
  for (let i = 0; i < h.length; i++) total += h[i];
  const tail = total * (1 - p / 100);
  let hi = s.max, lo = s.min;
  // upper end
  let acc = 0;
  for (let i = h.length - 1; i >= 0; i--) {
    acc += h[i];
    if (acc > tail) { hi = Math.min(s.max, binEdge(s, i + 1)); break; }
  }
  if (s.min < 0) {
    acc = 0;
    for (let i = 0; i < h.length; i++) {
      acc += h[i];
      if (acc > tail) { lo = Math.max(s.min, binEdge(s, i)); break; }
    }
  }
  return { lo, hi };
}

/** Quantization parameters of a range, int8 asymmetric: real = scale·(q − zp), q in [-128, 127]. */
export function qparams(r: Range): { scale: number; zeroPoint: number } {
  const lo = Math.min(r.lo, 0), hi = Math.max(r.hi, 0);
  if (!(hi > lo)) throw new Error('degenerate range (all values zero)');
  const scale = Math.fround((hi - lo) / 255);
  let zp = Math.round(-128 - lo / scale);
  zp = Math.max(-128, Math.min(127, zp)) + 0; // no -0
  return { scale, zeroPoint: zp };
}

/** Expected squared quantize-dequantize error of the histogram under range r. */
function quantError(s: TensorStats, nz: Int32Array, r: Range): number {
  const { scale, zeroPoint } = qparams(r);
  const h = s.hist!;
  let e = 0;
  for (let j = 0; j < nz.length; j++) {
    const i = nz[j];
    const x = binCenter(s, i);
    let q = Math.round(x / scale) + zeroPoint;
    if (q < -128) q = -128; else if (q > 127) q = 127;
    const d = x - (q - zeroPoint) * scale;
    e += h[i] * d * d;
  }
  return e;
}

export function mseRange(s: TensorStats): Range {
  const h = s.hist!;
  const nzl: number[] = [];
  for (let i = 0; i < h.length; i++) if (h[i] > 0) nzl.push(i);
  const nz = Int32Array.from(nzl);
  const fr: number[] = [];
  for (let k = 0; k < 40; k++) fr.push(Math.pow(0.92, k));
  let best: Range = { lo: s.min, hi: s.max };
  let bestE = quantError(s, nz, best);
  const los = s.min < 0 ? fr : [1];
  const his = s.max > 0 ? fr : [1];
  for (const a of los) {
    for (const b of his) {
      const r = { lo: s.min * a, hi: s.max * b };
      if (!(Math.max(r.hi, 0) > Math.min(r.lo, 0))) continue;
      const e = quantError(s, nz, r);
      if (e < bestE) { bestE = e; best = r; }
    }
  }
  return best;
}

export function entropyRange(s: TensorStats): Range {
  const h = s.hist!;
  const half = HIST_BINS >> 1;
  // |x| histogram: bin i covers [i·w, (i+1)·w), w = amax / half
  const abs = new Float64Array(half);
  for (let i = 0; i < half; i++) abs[i] = h[half + i] + h[half - 1 - i];
  const levels = s.min < 0 && s.max > 0 ? 128 : 256;
  let bestI = half, bestKL = Infinity;
  const start = Math.min(levels, half);
  const step = Math.max(1, Math.floor(half / 256));
  for (let i = start; i <= half; i += step) {
    const p = abs.slice(0, i);
    let outliers = 0;
    for (let j = i; j < half; j++) outliers += abs[j];
    p[i - 1] += outliers;
    // quantize the histogram slice (without the outliers) into `levels` chunks, each spread over its
    // non-zero bins; P has the outliers folded into its last bin, so clipping costs divergence
    const q = new Float64Array(i);
    const per = i / levels;
    for (let k = 0; k < levels; k++) {
      const a = Math.floor(k * per), b = k === levels - 1 ? i : Math.floor((k + 1) * per);
      let sum = 0, n = 0;
      for (let j = a; j < b; j++) { sum += abs[j]; if (abs[j] > 0) n++; }
      for (let j = a; j < b; j++) if (abs[j] > 0) q[j] = sum / n;
    }
    const kl = klDivergence(p, q);
    if (kl < bestKL) { bestKL = kl; bestI = i; }
  }
  const t = (bestI * s.amax) / half;
  return { lo: Math.max(s.min, -t), hi: Math.min(s.max, t) };
}

function klDivergence(p: Float64Array, q: Float64Array): number {
  let sp = 0, sq = 0;
  for (let i = 0; i < p.length; i++) { sp += p[i]; sq += q[i]; }
  if (sp === 0 || sq === 0) return Infinity;
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    const pi = p[i] / sp;
    const qi = q[i] > 0 ? q[i] / sq : 1e-12;
    kl += pi * Math.log(pi / qi);
  }
  return kl;
}
