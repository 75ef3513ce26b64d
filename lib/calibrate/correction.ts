// Corrections of a float model's Conv parameters against its own int8 QDQ version, measured on
// calibration images with ONNX Runtime:
//   biasCorrect:   layer by layer in graph order (each measured with the earlier ones corrected, so errors
//                  do not pile up), the bias absorbs the mean per-channel error of the int8 output
//                  (Nagel et al. 2019).
//   gptqRound:     the weights are rounded to their int8 grid by GPTQ (Frantar et al. 2022) on the
//                  correlation of the Conv's int8 input, so that the rounding errors of a filter cancel
//                  on the inputs it sees instead of adding up.
import { ModelProto, NodeProto, attrInt, attrInts, attrString } from '../onnx/proto';
import { Graph } from './graph';
import { makeValueInfo } from '../onnx/writer';
import type { InferenceSession } from 'onnxruntime-node';
import { createSession, runFloat } from '../ort/session';
import { quantizeWeights } from './quantize';
import { quantizeWeight } from '../numerics/quantization';

/** What both corrections need: the float model, how to emit its QDQ version, and the images. */
export interface CorrectionInput {
  floatModel: ModelProto;
  /** the int8 QDQ model of a (corrected) float model, quantized as calibrated */
  emit: (m: ModelProto) => ModelProto;
  /** names of nodes that stay float (not corrected) */
  floatNodes: Set<string>;
  /** preprocessed images, NCHW [1, 3, H, W] */
  images: Float32Array[];
  shape: number[];
  opset: number;
}

/** Convs whose weights and bias are constants, quantized and not graph outputs: the ones corrected. */
function correctableConvs(g: Graph, floatNodes: Set<string>): NodeProto[] {
  return g.nodes.filter((n) => n.opType === 'Conv' && n.input![2] && g.isConst(n.input![1]) && g.isConst(n.input![2]) &&
    !floatNodes.has(n.name || n.output![0]) && !g.isGraphOutput(n.output![0]));
}

async function withOutputs(model: ModelProto, tensors: string[], what: string): Promise<InferenceSession> {
  const g = new Graph(model);
  const outs = new Set(g.outputs.map((o) => o.name!));
  for (const t of tensors) if (!outs.has(t)) { g.outputs.push(makeValueInfo(t)); outs.add(t); }
  return createSession(g.toModel(), 'calibration', { what });
}

/** Per-channel mean of NCHW tensors over the images (and positions). */
async function channelMeans(model: ModelProto, tensors: string[], input: CorrectionInput): Promise<Map<string, { mean: Float64Array; spatial: number }>> {
  const s = await withOutputs(model, tensors, 'model');
  const sum = new Map<string, { mean: Float64Array; spatial: number }>();
  for (const img of input.images) {
    const r = await runFloat(s, img, input.shape, tensors);
    for (const t of tensors) {
      const { data, dims } = r[t];
      const C = dims[1], hw = data.length / C;
      let e = sum.get(t);
      if (!e) { e = { mean: new Float64Array(C), spatial: hw }; sum.set(t, e); }
      for (let c = 0; c < C; c++) {
        let v = 0;
        for (let i = c * hw, end = i + hw; i < end; i++) v += data[i];
        e.mean[c] += v / hw;
      }
    }
  }
  await s.release();
  for (const { mean } of sum.values()) for (let c = 0; c < mean.length; c++) mean[c] /= Math.max(1, input.images.length);
  return sum;
}

/**
 * Empirical bias correction (Nagel et al. 2019, §4.2, measured instead of analytic): quantization
 * shifts the mean of a convolution's output (clipped activation tails, rounding of small depthwise
 * filters), and the shift accumulates through the network. For each spatial Conv (a 1×1-pixel
 * output's mean over a few images is too noisy; `pointwise` includes those), the mean per-channel
 * difference of its int8 output from float is subtracted from its float bias. Returns the corrected
 * float model (`start`, by default the float model itself); the activation quantization stays as calibrated.
 */
export async function biasCorrect(input: CorrectionInput, pointwise = false, start = input.floatModel): Promise<ModelProto> {
  const fg = new Graph(start);
  const convs = correctableConvs(fg, input.floatNodes);
  const ref = await channelMeans(input.floatModel, convs.map((n) => n.output![0]), input);
  for (const n of convs) {
    const f = ref.get(n.output![0])!;
    if (f.spatial <= 1 && !pointwise) continue;
    const t = n.output![0];
    const m = (await channelMeans(input.emit(fg.toModel({ opset: input.opset })), [t], input)).get(t)!;
    const bN = n.input![2];
    const b = fg.constF(bN)!.slice();
    for (let c = 0; c < b.length; c++) b[c] -= m.mean[c] - f.mean[c];
    fg.setConst(bN, fg.constDims(bN), b);
  }
  return fg.toModel({ opset: input.opset });
}

/** Output positions of a Conv sampled per image for its input correlation. */
const POSITIONS_PER_IMAGE = 1024;

/** A Conv's geometry, pads resolved (auto_pad included). */
export interface ConvGeometry {
  C: number; H: number; W: number; O: number; OH: number; OW: number;
  groups: number; kh: number; kw: number; sh: number; sw: number; dh: number; dw: number; pt: number; pl: number;
}

function convGeometry(n: NodeProto, wDims: number[], xDims: readonly number[], yDims: readonly number[]): ConvGeometry {
  const [O, , kh, kw] = wDims;
  const [, C, H, W] = xDims;
  const [sh, sw] = attrInts(n, 'strides', [1, 1]);
  const [dh, dw] = attrInts(n, 'dilations', [1, 1]);
  const [OH, OW] = [yDims[2], yDims[3]];
  let [pt, pl] = attrInts(n, 'pads', [0, 0, 0, 0]);
  const auto = attrString(n, 'auto_pad', 'NOTSET');
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    const total = (i: number, o: number, s: number, k: number, d: number) => Math.max(0, (o - 1) * s + (k - 1) * d + 1 - i);
    const th = total(H, OH, sh, kh, dh), tw = total(W, OW, sw, kw, dw);
    pt = auto === 'SAME_UPPER' ? Math.floor(th / 2) : Math.ceil(th / 2);
    pl = auto === 'SAME_UPPER' ? Math.floor(tw / 2) : Math.ceil(tw / 2);
  }
  return { C, H, W, O, OH, OW, groups: attrInt(n, 'group', 1), kh, kw, sh, sw, dh, dw, pt, pl };
}

/**
 * Correlation E[x̃ x̃ᵀ] of a Conv's input patches x̃ = (patch of its group's input channels, 1), per group:
 * the Hessian of the output's squared error in the weights (and bias).
 */
export class PatchCorrelation {
  readonly F: number; // features per group: Cg·kh·kw weights and the bias
  readonly Og: number;
  private readonly A: Float64Array[]; // per group, F×F (upper triangle accumulated)
  private readonly f: Float64Array;
  constructor(readonly geo: ConvGeometry) {
    this.F = (geo.C / geo.groups) * geo.kh * geo.kw + 1;
    this.Og = geo.O / geo.groups;
    this.A = Array.from({ length: geo.groups }, () => new Float64Array(this.F * this.F));
    this.f = new Float64Array(this.F);
  }

  /** Adds the patches of one image (x: the Conv's input, NCHW) at about `positions` output positions. */
  add(x: Float32Array, positions: number, phase: number): void {
    const { C, H, W, OH, OW, groups, kh, kw, sh, sw, dh, dw, pt, pl } = this.geo;
    const Cg = C / groups, F = this.F, f = this.f, P = OH * OW;
    const step = Math.max(1, Math.ceil(P / positions));
    for (let p = phase % step; p < P; p += step) {
      const oy = Math.floor(p / OW), ox = p % OW;
      for (let g = 0; g < groups; g++) {
        let k = 0;
        for (let c = 0; c < Cg; c++) {
          const plane = (g * Cg + c) * H * W;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - pt + ky * dh;
            for (let kx = 0; kx < kw; kx++, k++) {
              const ix = ox * sw - pl + kx * dw;
              f[k] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x[plane + iy * W + ix] : 0;
            }
          }
        }
        f[k] = 1;
        const A = this.A[g];
        for (let i = 0; i < F; i++) {
          const fi = f[i];
          if (fi === 0) continue;
          for (let j = i, row = i * F; j < F; j++) A[row + j] += fi * f[j];
        }
      }
    }
  }

  /**
   * The weights (ONNX layout [O, Cg, kh, kw]) rounded by GPTQ to `scales` (one per output channel, the
   * values returned lie on that grid, within [-127, 127] steps) and the bias adjusted to match (a group
   * whose correlation is numerically singular keeps its float weights).
   */
  round(w0: Float32Array, b0: Float32Array, scales: Float32Array): { w: Float32Array; b: Float32Array } {
    const { F, Og } = this;
    const K = F - 1;
    const w = new Float32Array(w0.length), b = new Float32Array(b0.length);
    const M = new Float64Array(F * F), R = new Float64Array(F * Og);
    for (let g = 0; g < this.geo.groups; g++) {
      const A = this.A[g];
      for (let i = 0; i < F; i++) for (let o = 0; o < Og; o++) R[i * Og + o] = i < K ? w0[(g * Og + o) * K + i] : b0[g * Og + o];
      // M = A damped by 1% of its diagonal (GPTQ's choice); a feature never seen gets an identity row
      for (let i = 0; i < F; i++) for (let j = i; j < F; j++) M[i * F + j] = M[j * F + i] = A[i * F + j];
      for (let i = 0; i < F; i++) {
        const d = A[i * F + i];
        if (d > 0) M[i * F + i] = d * 1.01;
        else { for (let j = 0; j < F; j++) M[i * F + j] = M[j * F + i] = 0; M[i * F + i] = 1; }
      }
      // numerically singular: the float weights stay, and the emitter rounds each on its own to `scales`
      if (cholesky(M, F)) roundToGrid(M, F, R, Og, scales.subarray(g * Og, (g + 1) * Og));
      for (let o = 0; o < Og; o++) {
        const o0 = g * Og + o;
        for (let i = 0; i < K; i++) w[o0 * K + i] = R[i * Og + o];
        b[o0] = R[K * Og + o];
      }
    }
    return { w, b };
  }
}

/**
 * GPTQ / optimal brain quantization (Frantar et al. 2022): R (F×m, one column per output channel, the
 * last row the bias) is rounded to each channel's int8 grid one weight at a time, each rounding error
 * spread over the weights not yet rounded and the bias (which stays float) as H⁻¹ says, H = L Lᵀ the
 * input correlation: the result minimizes the output error on those inputs far better than rounding each
 * weight on its own.
 */
function roundToGrid(L: Float64Array, F: number, R: Float64Array, m: number, scales: Float32Array): boolean {
  // Li = L⁻¹ (lower); H⁻¹ = Liᵀ Li
  const Li = new Float64Array(F * F);
  for (let j = 0; j < F; j++) {
    Li[j * F + j] = 1 / L[j * F + j];
    for (let i = j + 1; i < F; i++) {
      let v = 0;
      for (let k = j; k < i; k++) v -= L[i * F + k] * Li[k * F + j];
      Li[i * F + j] = v / L[i * F + i];
    }
  }
  const Hi = new Float64Array(F * F);
  for (let i = 0; i < F; i++) for (let j = 0; j <= i; j++) {
    let v = 0; // (Liᵀ Li)[i][j] = Σ_{k >= i} Li[k][i]·Li[k][j]
    for (let k = i; k < F; k++) v += Li[k * F + i] * Li[k * F + j];
    Hi[i * F + j] = Hi[j * F + i] = v;
  }
  if (!cholesky(Hi, F)) return false;
  // H⁻¹ = Lc Lcᵀ = Uᵀ U with U = Lcᵀ upper: row i of U is what rounding weight i moves the later ones by
  const U = (i: number, j: number) => Hi[j * F + i];
  const K = F - 1;
  for (let o = 0; o < m; o++) {
    const s = scales[o];
    for (let i = 0; i < K; i++) {
      const w = R[i * m + o];
      const q = quantizeWeight(w, s) * s;
      const e = (w - q) / U(i, i);
      R[i * m + o] = q;
      for (let j = i + 1; j < F; j++) R[j * m + o] -= e * U(i, j);
    }
  }
  return true;
}

/** In-place Cholesky factorization (lower triangle) of the n×n matrix M; false if not positive definite. */
function cholesky(M: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    let d = M[j * n + j];
    for (let k = 0; k < j; k++) d -= M[j * n + k] * M[j * n + k];
    if (!(d > 0)) return false;
    const l = Math.sqrt(d);
    M[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let v = M[i * n + j];
      for (let k = 0; k < j; k++) v -= M[i * n + k] * M[j * n + k];
      M[i * n + j] = v / l;
    }
  }
  return true;
}

/**
 * GPTQ weight rounding: the int8 QDQ model runs once over the images with the input of every spatial Conv
 * as an output; the correlation of each Conv's dequantized int8 input gives the GPTQ rounding of its
 * weights to their int8 grid (the float weights' own grid when they lie on one, else max|w|/127 per
 * output channel), written back as float weights on that grid, with the scales the emitter must use.
 * (GPTQ proper measures each layer with the earlier ones already rounded; the input correlation hardly
 * changes with that, and one pass instead of one per Conv keeps it fast.) Returns the float model with
 * rounded weights and those scales.
 */
export async function gptqRound(input: CorrectionInput): Promise<{ model: ModelProto; weightScales: Map<string, Float32Array> }> {
  const fg = new Graph(input.floatModel);
  const qModel = input.emit(input.floatModel);
  const qNodes = qModel.graph!.node!;
  const convs = correctableConvs(fg, input.floatNodes).map((n) => {
    const qConv = qNodes.find((m) => m.opType === 'Conv' && m.output![0] === n.output![0]);
    return qConv ? { n, x: qConv.input![0], y: n.output![0], corr: undefined as PatchCorrelation | undefined } : undefined;
  }).filter((c): c is NonNullable<typeof c> => !!c);
  const names = [...new Set(convs.flatMap((c) => [c.x, c.y]))];
  const qs = await withOutputs(qModel, names, 'int8 model');
  try {
    for (let i = 0; i < input.images.length; i++) {
      const r = await runFloat(qs, input.images[i], input.shape, names);
      for (const c of convs) {
        const x = r[c.x], y = r[c.y];
        if (y.dims[2] * y.dims[3] <= 1) continue; // 1×1-pixel outputs (SE, classifier): too few samples
        c.corr ??= new PatchCorrelation(convGeometry(c.n, fg.constDims(c.n.input![1]), x.dims, y.dims));
        c.corr.add(x.data, POSITIONS_PER_IMAGE, i);
      }
    }
  } finally {
    await qs.release();
  }
  const weightScales = new Map<string, Float32Array>();
  for (const { n, corr } of convs) {
    if (!corr) continue;
    const wName = n.input![1], bName = n.input![2];
    const w0 = fg.constF(wName)!, wDims = fg.constDims(wName);
    const scales = quantizeWeights(w0, wDims[0], false).scales;
    const { w, b } = corr.round(w0, fg.constF(bName)!, scales);
    fg.setConst(wName, wDims, w);
    fg.setConst(bName, fg.constDims(bName), b);
    weightScales.set(wName, scales);
  }
  return { model: fg.toModel({ opset: input.opset }), weightScales };
}
