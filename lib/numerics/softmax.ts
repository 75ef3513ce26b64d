// Softmax and top-k of class scores: the one place for both. Two softmaxes, for two contracts: in double for
// reporting probabilities (classify), and in float32 exactly as ONNX Runtime computes a graph's Softmax (the
// runtime's output stage, whose result may be quantized again and must match ORT's int8 values).

/** Numerically stable softmax of `x[off .. off+n)`, in double. */
export function softmax(x: ArrayLike<number>, off = 0, n = x.length - off): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[off + i] > max) max = x[off + i];
  const p = new Float64Array(n);
  if (!Number.isFinite(max)) {
    // all -Inf / NaN / +Inf: no distribution; put everything on the max entries
    let count = 0;
    for (let i = 0; i < n; i++) if (x[off + i] === max) count++;
    for (let i = 0; i < n; i++) p[i] = x[off + i] === max && count ? 1 / count : 0;
    return p;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[off + i] - max);
    p[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) p[i] /= sum;
  return p;
}

/**
 * Softmax of each of `rows` rows of x, in place, in float32 as ONNX Runtime computes it: subtract the row max,
 * exp, sum in order, divide (a QuantizeLinear after it then gives ORT's int8 values; test/parity-api.test.ts).
 */
export function softmaxRowsFloat32(x: Float32Array, rows: number): void {
  const n = x.length / rows;
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * n, (r + 1) * n);
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, row[i]);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      row[i] = Math.exp(Math.fround(row[i] - max));
      sum = Math.fround(sum + row[i]);
    }
    for (let i = 0; i < n; i++) row[i] = row[i] / sum;
  }
}

/** Indices of the k largest values (ties: lower index first), largest first. */
export function topK(p: ArrayLike<number>, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < p.length; i++) {
    if (idx.length === k && p[i] <= p[idx[k - 1]]) continue;
    let j = idx.length < k ? idx.length : k - 1;
    if (idx.length < k) idx.push(i);
    while (j > 0 && p[idx[j - 1]] < p[i]) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = i;
  }
  return idx;
}

/** Whether x[off .. off+n) already is a probability distribution (entries in [0, 1] summing to 1 within 1e-3). */
export function isDistribution(x: ArrayLike<number>, off = 0, n = x.length - off): boolean {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = x[off + i];
    if (!(v >= 0 && v <= 1)) return false;
    sum += v;
  }
  return Math.abs(sum - 1) < 1e-3;
}
