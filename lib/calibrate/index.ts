// calibrate(): float ONNX MobileNet → int8 QDQ ONNX, from calibration images.
//   1. normalize the float graph (lib/calibrate/normalize.ts)
//   2. plan which tensors get quantized and how (quantize.ts)
//   3. run the float graph in ONNX Runtime with the observed tensors as extra
//      outputs, one image at a time (min/max pass, then a histogram pass for
//      percentile / entropy / mse), and compute the ranges (calibrators.ts)
//   4. write the QDQ graph with its metadata, atomically (no partial file)
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { readModel, encodeModel, opsetVersion, valueInfoShape, ModelProto } from '../onnx/proto';
import { floatTable } from '../image/preprocess';
import { parsePreprocess, formatPreprocess, PreprocessSpec } from '../preprocess-spec';
import { CALIB_KEYS, METADATA_KEYS, readMetadata } from '../onnx/metadata';
import { quantizeLinear } from '../numerics/quantization';
import { normalize, restoreNhwcInput, OUTPUT_OPSET } from './normalize';
import { Graph } from './graph';
import { makeValueInfo, writeFileAtomic } from '../onnx/writer';
import { planQuantization, observedTensors, resolveQParams, emitQdq, QuantPlan } from './quantize';
import { Method, METHODS, TensorStats, computeRange, needsHistogram, Range, qparams } from './calibrators';
import { listImages, streamImages, Progress } from './images';
import { createSession, runFloat } from '../ort/session';
import { findPairs, equalize, findHardSwishPairs, equalizeHardSwish, splitClipRange } from './equalize';
import { biasCorrect, gptqRound, CorrectionInput } from './correction';
import { chooseInt16, forcedChoice, forcedInt16, int16Metadata, Int16Choice, Int16Target, nodeMacs, tensorCost, Work } from './int16';

export { Method, METHODS } from './calibrators';

export interface CalibrateOptions {
  /** a folder of calibration images (or one image file) */
  images: string;
  method?: Method;
  /** for method 'percentile' (default 99.99) */
  percentile?: number;
  /** 'tf' | 'torch' | 'raw' | 'paddle' | JSON; default from the model's metadata or guessed */
  preprocess?: string;
  /** per-tensor weight scales instead of per output channel */
  perTensor?: boolean;
  /** use at most this many images */
  limit?: number;
  /** node names (or output tensor names) to keep in float */
  exclude?: string[];
  /**
   * cross-layer range equalization before calibration (see equalize.ts), default false: true or 'all'
   * for Conv → [Relu →] Conv pairs and Conv → HardSwish → depthwise Conv; 'hswish' for the latter only;
   * 'stem' for the stem only: the Conv reading the graph input → [Relu | ReLU6] → Conv (a ReLU6 stem's narrow
   * channels scaled up to fill [0, 6] when a depthwise Conv follows; the only ReLU6 pair equalized)
   */
  equalize?: boolean | 'all' | 'hswish' | 'stem';
  /**
   * empirical bias correction (default false): layer by layer, shift each spatial Conv's bias by the
   * mean per-channel error of its int8 output against float on the calibration images (see biasCorrect);
   * 'all' corrects the 1×1-pixel outputs (SE convolutions) too
   */
  biasCorrection?: boolean | 'all';
  /** images used for bias correction and GPTQ (the first N calibration images; default 32) */
  biasCorrectionImages?: number;
  /**
   * GPTQ weight rounding (default false): layer by layer, round each spatial Conv's weights to their
   * int8 grid so that the rounding errors cancel on its int8 inputs (see gptqRound); matters for float
   * weights that do not already lie on an int8 grid
   */
  gptq?: boolean;
  /**
   * clip the calibrated range of a tensor read only by HardSigmoid / HardSwish to where they are not
   * flat ([−3, 3] for an h-sigmoid input, ≥ −3 for an h-swish input): the same outputs, a finer step
   * (default true)
   */
  gateRanges?: boolean;
  /** calibrate Clip / ReLU6 outputs too: range [0, min(6, calibrated max)] instead of [0, 6] (default false) */
  calibrateClip?: boolean;
  /**
   * split the stem's ReLU6 output (the Conv reading the graph input → ReLU6 → depthwise Conv) into
   * ranges (true: 2; or 2..8): Clip(0, 6)(x) = Σ_k Clip(0, 6/n)(x − 6k/n), each channel computed n times
   * and summed by a grouped Conv that replaces the depthwise (see splitClipRange): the same function,
   * an n× finer int8 step for the first activation, n× its bytes and the first depthwise's work
   */
  splitStem?: boolean | number;
  /**
   * mixed precision (docs/calibration.md): 'auto' starts from every candidate in int16 and moves back to int8
   * the tensors whose int8 costs least accuracy per multiply-add while `int16Target` holds (see int16.ts); a
   * list forces those tensors (tensor names, node names or op types such as 'HardSwish'); default none (all int8)
   */
  int16?: 'auto' | string[];
  /** what 'auto' aims for: agreement % on the calibration images (default 98) or a logits SQNR, and the share budget */
  int16Target?: Int16Target;
  /** called for images that cannot be read (they are skipped) */
  onWarning?: (message: string) => void;
  /** progress bar on stderr (a terminal only) */
  progress?: boolean;
}

export interface CalibrateResult {
  model: ModelProto;
  bytes: Uint8Array;
  method: Method;
  preprocess: string;
  labels?: string;
  imagesUsed: number;
  imagesSkipped: number;
  /** per quantized tensor: range and quantization */
  tensors: { name: string; lo: number; hi: number; scale: number; zeroPoint: number; bits: 8 | 16; observedMin?: number; observedMax?: number }[];
  normalizeLog: string[];
  /** the mixed-precision choice, when int16 was asked for */
  int16?: Int16Choice;
}

/** The preprocessing a model asks for: its metadata, else a guess from its shape. */
export function guessPreprocess(model: ModelProto, normalizeLog: string[] = []): string {
  const meta = readMetadata(model);
  if (meta[METADATA_KEYS.preprocess]) return meta[METADATA_KEYS.preprocess];
  if (normalizeLog.some((l) => l.startsWith('input rescale'))) return 'raw';
  const classes = outputClasses(model);
  if (classes === 1001) return 'tf';
  return 'torch';
}

/** Number of entries of the model's first output's last dimension, if static. */
export function outputClasses(model: ModelProto): number | undefined {
  const o = model.graph?.output?.[0];
  if (!o) return undefined;
  const s = valueInfoShape(o, () => '?');
  const last = s[s.length - 1];
  return typeof last === 'number' ? last : undefined;
}

/** Input [height, width] of the model (preprocess size overrides; dynamic dims need it). */
export function inputSize(g: Graph, spec: PreprocessSpec): [number, number] {
  if (spec.size) return spec.size;
  const s = valueInfoShape(g.inputs[0], () => '?');
  if (s.length !== 4) throw new Error(`model input '${g.inputs[0].name}' must be NCHW (4 dimensions), has ${s.length}`);
  if (s[1] !== 3 && s[1] !== '?' && typeof s[1] === 'number') {
    throw new Error(`model input '${g.inputs[0].name}' has ${s[1]} channels; only RGB (3) is supported` +
      (s[3] === 3 ? ' (an NHWC input [N, H, W, 3] must be transposed to NCHW by the graph: Transpose(perm [0, 3, 1, 2]))' : ''));
  }
  const [h, w] = [s[2], s[3]];
  if (typeof h !== 'number' || typeof w !== 'number') {
    throw new Error(`model input '${g.inputs[0].name}' has a dynamic size (${s.join('×')}): give it in the preprocessing, e.g. --preprocess '{"base":"paddle","size":[48,192]}'`);
  }
  return [h, w];
}

/**
 * The int8 quantization of the graph input with the least squared error over the preprocessing's 3×256
 * possible values (each equally likely). The plain range quantization of tf's (p − 127.5) / 127.5 puts
 * every value exactly half a step between two codes (the grid needs a half-integer zero point), the
 * largest possible error on every pixel; a step slightly wider than 2/255 spreads the error
 * (mean square step²/12 instead of step²/4). Exact tables (raw: 0..255, step 1) stay exact.
 */
export function inputQParams(spec: PreprocessSpec): { scale: number; zeroPoint: number } {
  const t = floatTable(spec);
  const r = preprocessRange(spec)!;
  const base = qparams(r);
  const err = (scale: number, zp: number) => {
    let e = 0;
    for (let i = 0; i < t.length; i++) { const d = t[i] - Math.fround(scale) * (quantizeLinear(t[i], scale, zp) - zp); e += d * d; }
    return e;
  };
  let best = base, bestE = err(base.scale, base.zeroPoint);
  if (bestE === 0) return base;
  for (let k = 0; k <= 400; k++) {
    const scale = Math.fround(base.scale * (1 + k * 0.0001));
    for (let zp = base.zeroPoint - 3; zp <= base.zeroPoint + 3; zp++) {
      if (zp < -128 || zp > 127) continue;
      const e = err(scale, zp);
      if (e < bestE * (1 - 1e-9)) { bestE = e; best = { scale, zeroPoint: zp }; }
    }
  }
  return best;
}

/** Known value range of a preprocessing's output (so the input quantization is exact), or undefined. */
export function preprocessRange(spec: PreprocessSpec): Range | undefined {
  const t = floatTable(spec);
  let lo = Infinity, hi = -Infinity;
  for (const v of t) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return { lo, hi };
}

export function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/**
 * Runs the float graph over the images and collects statistics of `tensors`.
 * Memory: one image and one set of activations at a time.
 */
export async function collectStats(
  floatModel: ModelProto, tensors: string[], files: string[], spec: PreprocessSpec, size: [number, number],
  opts: { histogram: boolean; onWarning?: (m: string) => void; progress?: boolean; channelLo?: Map<string, Float32Array> },
): Promise<{ stats: Map<string, TensorStats>; used: number; skipped: number }> {
  const g = new Graph(floatModel);
  const outs = new Set(g.outputs.map((o) => o.name!));
  for (const t of tensors) if (!outs.has(t)) g.outputs.push(makeValueInfo(t));
  const s = await createSession(g.toModel(), 'calibration', { what: 'float model' });
  const stats = new Map(tensors.map((t) => [t, new TensorStats()]));
  const inputName = s.inputNames[0];
  const shape = [1, 3, size[0], size[1]];
  let used = 0, skipped = 0;
  const passes = opts.histogram ? 2 : 1;
  for (let pass = 0; pass < passes; pass++) {
    const bar = new Progress(pass === 0 ? 'calibrating (ranges)' : 'calibrating (histograms)', files.length, !opts.progress);
    let done = 0;
    for await (const img of streamImages(files, spec, size[1], size[0], (f, why) => {
      if (pass === 0) { skipped++; opts.onWarning?.(`skipping ${why.startsWith(f) ? why : `${f}: ${why}`}`); }
    })) {
      const r = await runFloat(s, img.data, shape, tensors.length ? tensors : undefined);
      for (const t of tensors) {
        let d = t === inputName ? img.data : r[t].data;
        const floor = opts.channelLo?.get(t);
        if (floor) {
          // values below a channel's floor do not matter (see Graph.rangeHints): observe max(x, floor)
          d = Float32Array.from(d);
          const hw = d.length / floor.length;
          for (let c = 0; c < floor.length; c++) for (let i = c * hw, e = i + hw; i < e; i++) if (d[i] < floor[c]) d[i] = floor[c];
        }
        if (pass === 0) stats.get(t)!.observeMinMax(d);
        else stats.get(t)!.observeHistogram(d);
      }
      if (pass === 0) used++;
      bar.tick(++done);
    }
    bar.tick(files.length);
    if (pass === 0 && used === 0) {
      throw new Error(`none of the ${files.length} images could be read (${skipped} skipped)`);
    }
  }
  await s.release();
  return { stats, used, skipped };
}

/** Per-channel maximum of |x| of NCHW tensors over the images (for equalization). */
async function channelMaxima(
  floatModel: ModelProto, tensors: string[], files: string[], spec: PreprocessSpec, size: [number, number],
): Promise<Map<string, Float32Array>> {
  const g = new Graph(floatModel);
  for (const t of tensors) g.outputs.push(makeValueInfo(t));
  const s = await createSession(g.toModel(), 'calibration', { what: 'float model' });
  const out = new Map<string, Float32Array>();
  for await (const img of streamImages(files, spec, size[1], size[0], () => undefined)) {
    const r = await runFloat(s, img.data, [1, 3, size[0], size[1]], tensors);
    for (const t of tensors) {
      const { data, dims } = r[t];
      const C = dims[1], hw = data.length / C;
      let m = out.get(t);
      if (!m) { m = new Float32Array(C); out.set(t, m); }
      for (let c = 0; c < C; c++) {
        let v = m[c];
        for (let i = c * hw, e = i + hw; i < e; i++) { const a = Math.abs(data[i]); if (a > v) v = a; }
        m[c] = v;
      }
    }
  }
  await s.release();
  return out;
}

export async function calibrate(modelPath: string | Uint8Array, opts: CalibrateOptions): Promise<CalibrateResult> {
  const method: Method = opts.method ?? 'minmax';
  if (!METHODS.includes(method)) throw new Error(`unknown calibration method '${method}': use one of ${METHODS.join(', ')}`);
  if (opts.percentile !== undefined && !(opts.percentile > 0 && opts.percentile <= 100)) {
    throw new Error(`--percentile must be in (0, 100], got ${opts.percentile}`);
  }
  const bytes = typeof modelPath === 'string' ? (() => {
    try { return fs.readFileSync(modelPath); } catch (e) { throw new Error(`cannot read model '${modelPath}': ${(e as Error).message}`); }
  })() : modelPath;
  const src = readModel(bytes);
  if ((src.graph!.node ?? []).some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear' || n.opType?.startsWith('QLinear'))) {
    throw new Error('the model is already quantized (it has QuantizeLinear / DequantizeLinear / QLinear* nodes): calibrate takes a float model');
  }
  const files = listImages(opts.images, opts.limit);
  const { graph, log, inputLayout: layout } = normalize(src);
  if (graph.inputs.length !== 1) throw new Error(`the model has ${graph.inputs.length} inputs; only single-input image models are supported`);
  const ppName = opts.preprocess ?? guessPreprocess(src, log);
  const spec = parsePreprocess(ppName);
  const size = inputSize(graph, spec);
  const opset = Math.max(OUTPUT_OPSET, opsetVersion(src));
  const splitPieces = opts.splitStem === true ? 2 : opts.splitStem || 1;
  if (!(Number.isInteger(splitPieces) && splitPieces >= 1 && splitPieces <= 8)) throw new Error(`splitStem must be a boolean or a number of pieces in 1..8, got ${opts.splitStem}`);
  let stemSplit = false;
  if (opts.equalize || splitPieces > 1) {
    const pairs = opts.equalize === 'hswish' ? [] : findPairs(graph, opts.equalize === true || opts.equalize === 'all' ? undefined : 'stem');
    if (pairs.length && opts.equalize) {
      const tensors = pairs.map((p) => p.tensor);
      const maxes = await channelMaxima(graph.toModel({ opset }), tensors, files.slice(0, 32), spec, size);
      const n = equalize(graph, pairs, maxes);
      if (n) log.push(`${n} Conv → [Relu →] Conv pairs equalized`);
    }
    if (splitPieces > 1) {
      stemSplit = pairs.filter((p) => splitClipRange(graph, p, splitPieces)).length > 0;
      if (stemSplit) log.push(`stem ReLU6 output split into ${splitPieces} ranges`);
      else opts.onWarning?.('split-stem: the model has no stem Conv → ReLU6 (Clip 0..6) → depthwise Conv to split; nothing split');
    }
  }
  if (opts.equalize) {
    const hs = opts.equalize === 'stem' ? [] : findHardSwishPairs(graph);
    if (hs.length) {
      const maxes = await channelMaxima(graph.toModel({ opset }), hs.map((p) => p.hswish.output![0]), files.slice(0, 32), spec, size);
      const n = equalizeHardSwish(graph, hs, maxes);
      if (n) log.push(`${n} Conv → HardSwish → depthwise Conv equalized (h-swish split into Conv·s × HardSigmoid)`);
    }
  }
  const floatModel = graph.toModel({ opset });

  const inQ = inputQParams(spec);
  const plan: QuantPlan = planQuantization(graph, { exclude: opts.exclude, inputRange: preprocessRange(spec), inputQParams: inQ, gateRanges: opts.gateRanges });
  const observe = observedTensors(plan, !!opts.calibrateClip);
  const { stats, used, skipped } = await collectStats(floatModel, observe, files, spec, size, {
    histogram: needsHistogram(method), onWarning: opts.onWarning, progress: opts.progress,
    channelLo: opts.gateRanges === false ? undefined
      : new Map([...graph.rangeHints].filter(([, h]) => h.channelLo).map(([t, h]) => [t, h.channelLo!])),
  });
  const ranges = new Map<string, Range>();
  for (const [t, s] of stats) ranges.set(t, computeRange(s, method, { percentile: opts.percentile }));
  const qp = resolveQParams(plan, ranges, opts.onWarning);

  const emit = (m: ModelProto, weightScales?: Map<string, Float32Array>, q = qp): Graph => {
    const qg = new Graph(m);
    const plan2 = planQuantization(qg, { exclude: opts.exclude, inputRange: preprocessRange(spec), inputQParams: inQ, gateRanges: opts.gateRanges });
    emitQdq(qg, plan2, q, { perTensor: opts.perTensor, weightScales });
    return qg;
  };
  let corrected = floatModel;
  let weightScales: Map<string, Float32Array> | undefined;
  if (opts.biasCorrection || opts.gptq) {
    const images: Float32Array[] = [];
    for await (const img of streamImages(files.slice(0, opts.biasCorrectionImages ?? 32), spec, size[1], size[0], () => undefined)) images.push(img.data);
    const input: CorrectionInput = {
      floatModel, emit: (m) => emit(m).toModel({ opset }), opset, images, shape: [1, 3, size[0], size[1]],
      floatNodes: new Set([...plan.floatNodes].map((n) => n.name || n.output![0])),
    };
    if (opts.gptq) {
      ({ model: corrected, weightScales } = await gptqRound(input));
      log.push(`GPTQ weight rounding on ${images.length} images`);
    }
    if (opts.biasCorrection) {
      const ws = weightScales; // GPTQ's grids, if it ran
      corrected = await biasCorrect({ ...input, emit: (m) => emit(m, ws).toModel({ opset }) }, opts.biasCorrection === 'all', corrected);
      log.push(`bias correction on ${images.length} images`);
    }
  }
  let finalQp = qp, int16: Int16Choice | undefined, outOpset = opset;
  if (opts.int16 && (opts.int16 === 'auto' || opts.int16.length)) {
    const ranges16 = new Map<string, Range>();
    for (const [t, st] of stats) if (st.max >= st.min) ranges16.set(t, { lo: st.min, hi: st.max });
    const withInt16 = (set: Set<string>) => resolveQParams(plan, ranges, undefined, { tensors: set, ranges: ranges16 });
    const int16Opset = Math.max(opset, 21); // int16 QuantizeLinear / DequantizeLinear
    const emit16 = (set: Set<string>) => {
      const g2 = emit(corrected, weightScales, withInt16(set));
      if (layout === 'nhwc') restoreNhwcInput(g2);
      return encodeModel(g2.toModel({ opset: set.size ? int16Opset : opset }));
    };
    int16 = await mixedPrecision({
      graph, plan, files, spec, size, floatModel, emit: emit16, opts,
    });
    if (int16.tensors.length) {
      finalQp = withInt16(new Set(int16.tensors));
      outOpset = int16Opset;
      log.push(`int16 activations: ${int16.tensors.length} tensors, ${(100 * int16.share).toFixed(1)}% of multiply-adds (${int16.stop})`);
    }
  }
  const qg = emit(corrected, weightScales, finalQp);
  if (layout === 'nhwc') restoreNhwcInput(qg);
  const classes = outputClasses(src);
  const meta = readMetadata(src);
  const labels = meta[METADATA_KEYS.labels] ?? (classes === 1001 ? 'imagenet-1001' : classes === 1000 ? 'imagenet-1000' : undefined);
  const md: Record<string, string> = {
    [METADATA_KEYS.preprocess]: formatPreprocess(spec),
    [CALIB_KEYS.method]: (method === 'percentile' ? `percentile ${opts.percentile ?? 99.99}` : method) +
      (opts.equalize ? ` +equalize${opts.equalize === 'hswish' || opts.equalize === 'stem' ? `-${opts.equalize}` : ''}` : '') + (opts.biasCorrection ? ` +bias-correction${opts.biasCorrection === 'all' ? '-all' : ''}` : '') + (opts.gptq ? ' +gptq' : '') + (stemSplit ? ` +split-stem ${splitPieces}` : '') + (opts.calibrateClip ? ' +calibrate-clip' : ''),
    [CALIB_KEYS.images]: String(used),
    [CALIB_KEYS.sourceSha256]: sha256(bytes),
  };
  if (typeof modelPath === 'string') md[CALIB_KEYS.source] = path.basename(modelPath);
  if (labels) md[METADATA_KEYS.labels] = labels;
  if (int16?.tensors.length) md[CALIB_KEYS.int16] = int16Metadata(int16);
  const model = qg.toModel({ opset: outOpset, metadata: md });
  const out = encodeModel(model);
  return {
    model, bytes: out, method, preprocess: formatPreprocess(spec), labels, imagesUsed: used, imagesSkipped: skipped,
    tensors: plan.tensors.map((t) => {
      const q = finalQp.get(t)!;
      const s = stats.get(t);
      return { name: t, lo: q.range.lo, hi: q.range.hi, scale: q.scale, zeroPoint: q.zeroPoint, bits: q.bits ?? 8, observedMin: s?.min, observedMax: s?.max };
    }),
    normalizeLog: log,
    ...(int16 ? { int16 } : {}),
  };
}

/**
 * The int16 tensors of a calibrated file (opts.int16): forced by name, or chosen by chooseInt16 measuring
 * candidate files in mnq's runtime against the float model's outputs on the calibration images.
 */
async function mixedPrecision(a: {
  graph: Graph; plan: QuantPlan; files: string[]; spec: PreprocessSpec; size: [number, number]; floatModel: ModelProto;
  emit: (int16: Set<string>) => Uint8Array; opts: CalibrateOptions;
}): Promise<Int16Choice> {
  const { graph, plan, opts } = a;
  const inputs = new Set(graph.inputs.map((i) => i.name!));
  const aliases = (t: string) => plan.tensors.filter((u) => { const r = plan.rangeOf.get(u)!; return r.kind === 'same' && r.as === t; });
  const candidates = plan.tensors.filter((t) => {
    const k = plan.rangeOf.get(t)!.kind;
    return k !== 'same' && k !== 'fixed' && !inputs.has(t) && !graph.isGraphOutput(t) && !aliases(t).some((u) => graph.isGraphOutput(u));
  });
  // float outputs on the scoring images (the calibration images), and the candidates' dims (one image)
  const shape1 = [1, 3, a.size[0], a.size[1]];
  const g = new Graph(a.floatModel);
  const outName = g.outputs[0].name!;
  const probe = [...new Set([...candidates, ...graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm').map((n) => n.input![0])])]
    .filter((t) => !inputs.has(t) && !g.isGraphOutput(t));
  for (const t of probe) g.outputs.push(makeValueInfo(t));
  const s = await createSession(g.toModel(), 'calibration', { what: 'float model' });
  const images: Float32Array[] = [], outs: Float32Array[] = [];
  const dims = new Map<string, number[]>();
  for (const i of inputs) dims.set(i, shape1);
  const bar = new Progress('int16: float outputs', a.files.length, !opts.progress);
  for await (const img of streamImages(a.files, a.spec, a.size[1], a.size[0], () => undefined)) {
    const r = await runFloat(s, img.data, shape1, images.length ? [outName] : [outName, ...probe]);
    if (!images.length) for (const t of probe) dims.set(t, [...r[t].dims]);
    images.push(img.data);
    outs.push(Float32Array.from(r[outName].data));
    bar.tick(images.length);
  }
  await s.release();
  const classes = outs[0].length;
  // the Conv / Gemm work each candidate's int16 makes wide: its writer (through a fused activation) and readers
  const work: Work = { ops: new Map(), touching: new Map(), total: 0 };
  const touch = (t: string, op: string) => { const l = work.touching.get(t) ?? []; l.push(op); work.touching.set(t, l); };
  for (const n of graph.nodes) {
    const d = dims.get(n.input?.[0] ?? '');
    if (!(n.opType === 'Conv' || n.opType === 'Gemm') || !d || plan.floatNodes.has(n)) continue;
    const id = n.name || n.output![0];
    work.ops.set(id, nodeMacs(graph, n, d));
    work.total += work.ops.get(id)!;
    touch(n.input![0], id);
    const act = graph.soleConsumer(n.output![0]);
    touch(act && plan.fused.has(act) ? act.output![0] : n.output![0], id);
  }
  const cost = new Map(candidates.map((t) => [t, tensorCost(work, t, (dims.get(t) ?? [1]).slice(1).reduce((x, y) => x * y, 1))]));
  const batch = new Float32Array(images.length * images[0].length);
  images.forEach((x, i) => batch.set(x, i * x.length));
  const floatOut = new Float32Array(outs.length * classes);
  outs.forEach((x, i) => floatOut.set(x, i * classes));
  const shape = [images.length, 3, a.size[0], a.size[1]];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { load } = require('../model') as typeof import('../model');
  const loadModel = (bytes: Uint8Array) => load(bytes, { threads: 1 });
  const args = { graph, candidates, work, cost, emit: a.emit, load: loadModel, images: batch, shape, floatOut, classes, target: opts.int16Target ?? {} };
  if (opts.int16 !== 'auto') return forcedChoice(args, forcedInt16(graph, candidates, opts.int16!));
  const pbar = new Progress('int16: measuring tensors', candidates.length, !opts.progress);
  return chooseInt16({
    ...args, onStep: (done) => pbar.tick(done),
  });
}

/** Writes bytes to `file` atomically (temp file + rename); refuses an existing file unless force. */
export function writeOutput(file: string, bytes: Uint8Array, force: boolean): void {
  if (fs.existsSync(file) && !force) throw new Error(`output '${file}' exists: use --force to overwrite it`);
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new Error(`output folder '${dir}' does not exist`);
  writeFileAtomic(file, bytes);
}
