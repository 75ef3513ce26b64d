// compare(): what int8 costs. Runs the float model (ONNX Runtime), the int8
// model (ONNX Runtime, and mnq when its runtime is available) on images and
// reports top-1 agreement with float, logits SQNR and cosine, per-layer SQNR /
// scale / range / saturation for every quantized tensor whose float counterpart
// exists in the float model, the images whose top-1 flipped, and top-1 / top-5
// where the images are labelled (an ImageNet wnid in the file name).
import * as fs from 'fs';
import * as path from 'path';
import { readModel, encodeModel, ModelProto, tensorData, toNum, DataType } from '../onnx/proto';
import { imageInLayout, imageShape } from '../image/preprocess';
import { parsePreprocess } from '../preprocess-spec';
import { CALIB_KEYS, METADATA_KEYS, readMetadata } from '../onnx/metadata';
import { Labels, imagenetClassOfFile, imagenetLabelsFor, loadLabels } from '../labels';
import { isDistribution, softmax, topK } from '../numerics/softmax';
import { loadSharp } from '../image/sharp';
import { Graph } from './graph';
import { makeValueInfo } from '../onnx/writer';
import { listImages, streamImages, Progress } from './images';
import { createSession, runFloat } from '../ort/session';
import { guessPreprocess, inputSize, outputClasses, sha256 } from './index';
import { normalize, inputLayout } from './normalize';
import { readInt16Metadata } from './int16';

export interface CompareOptions {
  images: string;
  limit?: number;
  preprocess?: string;
  /** per-layer statistics (extra outputs; slower) — default true */
  layers?: boolean;
  /** also run the int8 model through mnq (default: when the runtime is available) */
  mnq?: boolean;
  onWarning?: (m: string) => void;
  progress?: boolean;
  /**
   * compare even when the float model is not the int8 model's recorded source (`mnq.source.sha256`, written by
   * `mnq calibrate`): a warning instead of an Error
   */
  force?: boolean;
  /** a small JPEG of each flipped image (Flip.thumbnail), for the HTML report */
  thumbnails?: boolean;
  /** the command that asked for the comparison, for the report */
  command?: string;
}

/** top-1 / top-5 in %, over the labelled images; null when no image is labelled. */
export interface Accuracy { top1: number | null; top5: number | null; labelled: number }

/** One model's top-1 on an image: class index, its label and probability (softmax unless the output is one). */
export interface Top1 { index: number; label: string; probability: number }

/** An image whose int8 top-1 differs from the float model's. */
export interface Flip {
  file: string;
  /** the image's true output index, when its file name says (-1 when not) */
  truth: number;
  float: Top1;
  int8: Top1;
  /** a data: URL of a small JPEG of the image, with CompareOptions.thumbnails */
  thumbnail?: string;
}

/** The most flipped images a result lists (flipCount counts them all). */
export const MAX_FLIPS = 100;
export interface LayerRow {
  tensor: string;
  /** node producing it in the int8 graph */
  op: string;
  sqnrDb: number;
  scale: number;
  zeroPoint: number;
  /** 8 (int8 / uint8) or 16 (int16 / uint16: a mixed-precision file's int16 tensor) */
  bits: 8 | 16;
  /** an int16 tensor chosen by `mnq calibrate --int16 auto`: the error it alone in int8 would add (logits SQNR, dB) */
  int8ErrorDb?: number;
  /** representable range of the quantized tensor */
  qmin: number;
  qmax: number;
  /** observed float range */
  fmin: number;
  fmax: number;
  /** % of float values outside the representable range */
  saturationPct: number;
  worst?: boolean;
}
export interface CompareResult {
  images: number;
  skipped: number;
  preprocess: string;
  classes: number;
  floatOrt: Accuracy;
  int8Ort: Accuracy;
  int8Mnq?: Accuracy;
  /** why int8-mnq is missing, when it is */
  mnqNote?: string;
  /** % of images where int8 top-1 = float top-1 */
  agreementOrt: number;
  agreementMnq?: number;
  /** int8 mnq vs int8 ONNX Runtime: % of images with the same top-1, and with bit-identical outputs */
  /**
   * mnq's outputs against ORT's on the same quantized file: same top-1 %, identical outputs %, and the logits SQNR
   * of mnq against ORT (Infinity when identical; a mixed int8 / int16 file differs: ORT runs int16 groups in float)
   */
  mnqVsOrt?: { top1Agreement: number; identicalPct: number; sqnrDb: number };
  logitsSqnrDb: number;
  logitsCosine: number;
  layers: LayerRow[];
  metadata: Record<string, string>;
  /** images whose int8 top-1 (mnq's when it ran, else ONNX Runtime's) differs from float's: the first MAX_FLIPS */
  flips: Flip[];
  flipCount: number;
  /** which int8 run `flips` compares with float */
  flipEngine: 'mnq' | 'ONNX Runtime';
  /** where the labels of `flips` come from */
  labels: string;
  warnings: string[];
  /** what made this result: mnq's version, the date (ISO 8601) and the command, when given */
  made: { mnq: string; date: string; command?: string };
}

class Energy {
  s = 0; n = 0;
  add(ref: ArrayLike<number>, x: ArrayLike<number>): void {
    for (let i = 0; i < ref.length; i++) { const d = x[i] - ref[i]; this.s += ref[i] * ref[i]; this.n += d * d; }
  }
  db(): number { return this.n === 0 ? Infinity : 10 * Math.log10(this.s / this.n); }
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return aa === 0 || bb === 0 ? (aa === bb ? 1 : 0) : ab / Math.sqrt(aa * bb);
}

interface LayerPair { floatName: string; int8Name: string; op: string; scale: number; zeroPoint: number; bits: 8 | 16; lo: number; hi: number }

/** The integer range of a zero point's type (int8 when there is none). */
function typeRange(dataType: number | undefined): [number, number] {
  switch (dataType) {
    case DataType.UINT8: return [0, 255];
    case DataType.INT16: return [-32768, 32767];
    case DataType.UINT16: return [0, 65535];
    default: return [-128, 127];
  }
}

/** Quantized tensors of the int8 graph (QuantizeLinear inputs) that exist in the float graph by name. */
function layerPairs(floatModel: ModelProto, int8: ModelProto): LayerPair[] {
  const floatTensors = new Set<string>();
  for (const n of floatModel.graph!.node ?? []) for (const o of n.output ?? []) floatTensors.add(o);
  for (const i of floatModel.graph!.input ?? []) floatTensors.add(i.name!);
  const inits = new Map((int8.graph!.initializer ?? []).map((t) => [t.name!, t]));
  const prod = new Map<string, string>();
  for (const n of int8.graph!.node ?? []) for (const o of n.output ?? []) prod.set(o, n.opType!);
  const pairs: LayerPair[] = [];
  const nodes = int8.graph!.node ?? [];
  for (const q of nodes) {
    if (q.opType !== 'QuantizeLinear') continue;
    const src = q.input![0];
    const cands = [src, src.replace(/_float(_\d+)?$/, ''), src.replace(/_f$/, '')];
    const f = cands.find((c) => floatTensors.has(c));
    if (!f) continue;
    const dq = nodes.find((n) => n.opType === 'DequantizeLinear' && n.input![0] === q.output![0]);
    if (!dq) continue;
    const s = inits.get(q.input![1]);
    const z = q.input![2] ? inits.get(q.input![2]) : undefined;
    if (!s) continue;
    const sv = tensorData(s);
    if (sv.length !== 1) continue;
    const zv = z ? tensorData(z)[0] : 0;
    const [lo, hi] = typeRange(z?.dataType ?? undefined);
    pairs.push({ floatName: f, int8Name: dq.output![0], op: prod.get(src) ?? 'input', scale: sv[0], zeroPoint: Number(zv), bits: hi > 255 ? 16 : 8, lo, hi });
  }
  return pairs;
}

interface MnqRunner { run(x: Float32Array, shape: number[]): Promise<Float32Array>; dispose(): void }

/** Loads the int8 model in mnq's runtime (lib/model.ts) when it is available, else returns why not. */
async function loadMnq(bytes: Uint8Array): Promise<MnqRunner | string> {
  let mod: { load(b: Uint8Array): Promise<{ run(x: Float32Array, shape: number[]): Promise<Float32Array>; dispose(): void }> };
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    mod = require('../model');
  } catch (e) {
    return `mnq runtime not available (${(e as Error).message.split('\n')[0]})`;
  }
  try {
    const m = await mod.load(bytes);
    return { run: (x, shape) => m.run(x, shape), dispose: () => m.dispose() };
  } catch (e) {
    return `mnq cannot run the int8 model: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** The labels of a model's outputs: its metadata's, else ImageNet's by class count, else 'class N'. */
function outputLabels(meta: Record<string, string>, classes: number): Labels {
  const named = meta[METADATA_KEYS.labels];
  if (named) {
    try {
      const l = loadLabels(named);
      if (l.names.length === classes) return l;
    } catch { /* a label file of the machine that calibrated: fall back */ }
  }
  return imagenetLabelsFor(classes) ?? { source: 'class indices', names: Array.from({ length: classes }, (_, i) => `class ${i}`) };
}

/** top-1 of one output row. */
function top1Of(out: Float32Array, labels: Labels): Top1 {
  const p = isDistribution(out) ? out : softmax(out);
  const [index] = topK(p, 1);
  return { index, label: labels.names[index] ?? `class ${index}`, probability: p[index] };
}

async function thumbnail(file: string): Promise<string | undefined> {
  try {
    const jpeg = await loadSharp()(file).rotate().resize(96, 96, { fit: 'cover' }).jpeg({ quality: 70 }).toBuffer();
    return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
  } catch {
    return undefined; // the image decoded for the models; a thumbnail is only a picture of it
  }
}

/**
 * The float model must be the int8 model's source when the int8 file records one (`mnq calibrate` writes its
 * sha256): an Error naming both, or with `force` a warning.
 */
function checkSource(floatPath: string, fBytes: Uint8Array, int8Path: string, meta: Record<string, string>, opts: CompareOptions, warnings: string[]): void {
  const recorded = meta[CALIB_KEYS.sourceSha256];
  if (!recorded) return;
  const actual = sha256(fBytes);
  if (actual === recorded) return;
  const source = meta[CALIB_KEYS.source] ? ` ('${meta[CALIB_KEYS.source]}')` : '';
  const what = `'${floatPath}' is not the float model '${int8Path}' was made from: its sha256 is ${actual}, the int8 file records ${recorded}${source}`;
  if (!opts.force) throw new Error(`${what}; --force compares them anyway (CompareOptions.force)`);
  warnings.push(what);
  opts.onWarning?.(what);
}

export async function compare(floatPath: string, int8Path: string, opts: CompareOptions): Promise<CompareResult> {
  const read = (p: string) => { try { return fs.readFileSync(p); } catch (e) { throw new Error(`cannot read model '${p}': ${(e as Error).message}`); } };
  const fBytes = read(floatPath), qBytes = read(int8Path);
  const fModel = readModel(fBytes), qModel = readModel(qBytes);
  const qMeta = readMetadata(qModel);
  const warnings: string[] = [];
  checkSource(floatPath, fBytes, int8Path, qMeta, opts, warnings);
  const files = listImages(opts.images, opts.limit);
  const { graph: fg, log } = normalize(fModel);
  const pp = opts.preprocess ?? qMeta[METADATA_KEYS.preprocess] ?? guessPreprocess(fModel, log);
  const spec = parsePreprocess(pp);
  const size = inputSize(fg, spec);
  const classes = outputClasses(fModel) ?? outputClasses(qModel) ?? 0;
  const labels = outputLabels(qMeta, classes);
  const layers = opts.layers !== false;
  const pairs = layers ? layerPairs(fModel, qModel) : [];

  const fG = new Graph(fModel);
  const fOut = fModel.graph!.output![0].name!;
  const fInputName = fG.inputs[0].name!;
  const fExtra = [...new Set(pairs.map((p) => p.floatName))].filter((t) => t !== fOut && t !== fInputName);
  for (const t of fExtra) fG.outputs.push(makeValueInfo(t));
  const qG = new Graph(qModel);
  const qOut = qModel.graph!.output![0].name!;
  const qExtra = [...new Set(pairs.map((p) => p.int8Name))].filter((t) => t !== qOut);
  for (const t of qExtra) qG.outputs.push(makeValueInfo(t));
  const fs1 = await createSession(fG.toModel(), 'calibration', { what: 'float model' });
  const qs = await createSession(qG.toModel(), 'calibration', { what: 'int8 model' });
  const useMnq = opts.mnq !== false;
  const mnq = useMnq ? await loadMnq(qBytes) : 'not requested';
  const mnqRun = typeof mnq === 'string' ? undefined : mnq;

  const acc = { f: [0, 0], q: [0, 0], m: [0, 0] };
  const flips: Flip[] = [];
  let flipCount = 0;
  let labelled = 0, agree = 0, agreeM = 0, n = 0, skipped = 0, cosSum = 0, mqSame = 0, mqIdentical = 0;
  const logitE = new Energy(), mnqOrtE = new Energy();
  const layerE = pairs.map(() => ({ e: new Energy(), sat: 0, cnt: 0, fmin: Infinity, fmax: -Infinity }));
  // each model gets the images in its own layout (NHWC models: tf2onnx's Keras exports)
  const fLayout = inputLayout(fModel), qLayout = inputLayout(qModel);
  const [H, W] = size;
  const bar = new Progress('comparing', files.length, !opts.progress);
  for await (const img of streamImages(files, spec, size[1], size[0], (f, why) => { skipped++; opts.onWarning?.(`skipping ${why.startsWith(f) ? why : `${f}: ${why}`}`); })) {
    const fx = imageInLayout(img.data, 3, H, W, fLayout), qx = qLayout === fLayout ? fx : imageInLayout(img.data, 3, H, W, qLayout);
    const fr = await runFloat(fs1, fx, imageShape(3, H, W, fLayout), [fOut, ...fExtra]);
    const qr = await runFloat(qs, qx, imageShape(3, H, W, qLayout), [qOut, ...qExtra]);
    const fl = fr[fOut].data, ql = qr[qOut].data;
    const ml = mnqRun ? await mnqRun.run(qx, imageShape(3, H, W, qLayout)) : undefined;
    const cls = imagenetClassOfFile(img.file);
    const label = cls < 0 ? -1 : classes === 1001 ? cls + 1 : classes === 1000 ? cls : -1;
    const ft = topK(fl, 5), qt = topK(ql, 5), mt = ml ? topK(ml, 5) : undefined;
    if (label >= 0) {
      labelled++;
      if (ft[0] === label) acc.f[0]++;
      if (ft.includes(label)) acc.f[1]++;
      if (qt[0] === label) acc.q[0]++;
      if (qt.includes(label)) acc.q[1]++;
      if (mt && mt[0] === label) acc.m[0]++;
      if (mt && mt.includes(label)) acc.m[1]++;
    }
    if (ft[0] === qt[0]) agree++;
    if (mt && ft[0] === mt[0]) agreeM++;
    const int8Top = mt ?? qt;
    if (int8Top[0] !== ft[0]) {
      flipCount++;
      if (flips.length < MAX_FLIPS) {
        const flip: Flip = { file: img.file, truth: label, float: top1Of(fl, labels), int8: top1Of(ml ?? ql, labels) };
        const t = opts.thumbnails ? await thumbnail(img.file) : undefined;
        if (t) flip.thumbnail = t;
        flips.push(flip);
      }
    }
    if (ml && mt) {
      if (mt[0] === qt[0]) mqSame++;
      let same = ml.length === ql.length;
      for (let i = 0; same && i < ml.length; i++) if (ml[i] !== ql[i]) same = false;
      if (same) mqIdentical++;
      mnqOrtE.add(ql, ml);
    }
    logitE.add(fl, ql);
    cosSum += cosine(fl, ql);
    pairs.forEach((p, k) => {
      const a = p.floatName === fInputName ? fx : fr[p.floatName]?.data;
      const b = qr[p.int8Name]?.data;
      if (!a || !b || a.length !== b.length) return;
      const L = layerE[k];
      L.e.add(a, b);
      const lo = p.scale * (p.lo - p.zeroPoint), hi = p.scale * (p.hi - p.zeroPoint);
      for (let i = 0; i < a.length; i++) {
        const v = a[i];
        if (v < L.fmin) L.fmin = v;
        if (v > L.fmax) L.fmax = v;
        if (v < lo - p.scale / 2 || v > hi + p.scale / 2) L.sat++;
      }
      L.cnt += a.length;
    });
    n++;
    bar.tick(n + skipped);
  }
  await fs1.release();
  await qs.release();
  mnqRun?.dispose();
  if (n === 0) throw new Error(`none of the ${files.length} images could be read`);
  const pct = (x: number, d: number) => (d ? (100 * x) / d : NaN);
  const acc100 = (x: number) => (labelled ? (100 * x) / labelled : null);
  const accuracy = (a: number[]): Accuracy => ({ top1: acc100(a[0]), top5: acc100(a[1]), labelled });
  const rows: LayerRow[] = pairs.map((p, k) => ({
    tensor: p.floatName, op: p.op, sqnrDb: layerE[k].e.db(), scale: p.scale, zeroPoint: p.zeroPoint, bits: p.bits,
    qmin: p.scale * (p.lo - p.zeroPoint), qmax: p.scale * (p.hi - p.zeroPoint),
    fmin: layerE[k].fmin, fmax: layerE[k].fmax, saturationPct: pct(layerE[k].sat, layerE[k].cnt),
  })).filter((r, k) => layerE[k].cnt > 0);
  const int16Meta = readInt16Metadata(qMeta[CALIB_KEYS.int16]);
  for (const r of rows) {
    const c = int16Meta?.tensors[r.tensor];
    if (r.bits === 16 && typeof c === 'number') r.int8ErrorDb = c;
  }
  // flag the worst: the 5 lowest SQNR (and anything below 15 dB)
  const sorted = [...rows].sort((a, b) => a.sqnrDb - b.sqnrDb);
  for (const r of sorted.slice(0, 5)) r.worst = true;
  for (const r of rows) if (r.sqnrDb < 15) r.worst = true;
  const res: CompareResult = {
    images: n, skipped, preprocess: pp, classes,
    floatOrt: accuracy(acc.f),
    int8Ort: accuracy(acc.q),
    agreementOrt: pct(agree, n),
    logitsSqnrDb: logitE.db(),
    logitsCosine: cosSum / n,
    layers: rows,
    metadata: qMeta,
    flips, flipCount, flipEngine: mnqRun ? 'mnq' : 'ONNX Runtime', labels: labels.source, warnings,
    made: { mnq: MNQ_VERSION, date: new Date().toISOString(), ...(opts.command ? { command: opts.command } : {}) },
  };
  if (mnqRun) {
    res.int8Mnq = accuracy(acc.m);
    res.agreementMnq = pct(agreeM, n);
    res.mnqVsOrt = { top1Agreement: pct(mqSame, n), identicalPct: pct(mqIdentical, n), sqnrDb: mnqOrtE.db() };
  } else res.mnqNote = mnq as string;
  return res;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const MNQ_VERSION = (require('../../package.json') as { version: string }).version;

const f1 = (x: number | null) => (x === null ? '—' : Number.isFinite(x) ? x.toFixed(1) : String(x));
const g4 = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : String(x));

export function formatCompare(r: CompareResult): string {
  const L: string[] = [];
  L.push(`images: ${r.images} (${r.floatOrt.labelled} labelled${r.skipped ? `, ${r.skipped} skipped` : ''}), preprocessing ${r.preprocess}, ${r.classes} classes`);
  L.push('');
  L.push('                 top-1    top-5   agreement');
  L.push(`float (ORT)     ${f1(r.floatOrt.top1).padStart(6)}   ${f1(r.floatOrt.top5).padStart(6)}`);
  if (r.int8Mnq) L.push(`int8 (mnq)      ${f1(r.int8Mnq.top1).padStart(6)}   ${f1(r.int8Mnq.top5).padStart(6)}   ${f1(r.agreementMnq!).padStart(6)}%`);
  else L.push(`int8 (mnq)           —        —   (${r.mnqNote})`);
  L.push(`int8 (ORT)      ${f1(r.int8Ort.top1).padStart(6)}   ${f1(r.int8Ort.top5).padStart(6)}   ${f1(r.agreementOrt).padStart(6)}%`);
  if (!r.floatOrt.labelled) L.push('(top-1 / top-5: no image is labelled; they need an ImageNet wnid in the file name, e.g. n01440764_tench.JPEG)');
  L.push('');
  L.push(`logits (int8 ORT vs float): SQNR ${f1(r.logitsSqnrDb)} dB, cosine ${r.logitsCosine.toFixed(4)}`);
  if (r.mnqVsOrt) {
    L.push(`int8 mnq vs int8 ORT: same top-1 on ${f1(r.mnqVsOrt.top1Agreement)}% of images, identical outputs on ${f1(r.mnqVsOrt.identicalPct)}%` +
      (r.mnqVsOrt.identicalPct < 100 ? `, logits SQNR ${f1(r.mnqVsOrt.sqnrDb)} dB` : ''));
  }
  if (r.layers.length) {
    L.push('');
    const mixed = r.layers.some((x) => x.bits === 16);
    L.push(`${'layer'.padEnd(40)} ${'op'.padEnd(18)}${mixed ? ' bits' : ''} ${'SQNR dB'.padStart(8)} ${'scale'.padStart(10)} ${'zp'.padStart(4)}  ${'int8 range'.padEnd(20)} ${'float range'.padEnd(20)} sat %${mixed ? '   int8 alone adds' : ''}`);
    for (const x of r.layers) {
      L.push(`${(x.worst ? '! ' : '  ') + x.tensor.slice(-38).padEnd(38)} ${x.op.padEnd(18)}${mixed ? ` ${String(x.bits).padStart(4)}` : ''} ${f1(x.sqnrDb).padStart(8)} ${g4(x.scale).padStart(10)} ${String(x.zeroPoint).padStart(4)}  ${`[${g4(x.qmin)}, ${g4(x.qmax)}]`.padEnd(20)} ${`[${g4(x.fmin)}, ${g4(x.fmax)}]`.padEnd(20)} ${x.saturationPct.toFixed(3)}` +
        (x.int8ErrorDb !== undefined ? `   ${x.int8ErrorDb.toFixed(1)} dB` : ''));
    }
    L.push('(! = among the worst layers: the 5 lowest SQNR, or below 15 dB)');
    if (mixed) {
      const n16 = r.layers.filter((x) => x.bits === 16).length;
      L.push(`(bits 16: ${n16} of the ${r.layers.length} tensors are int16; "int8 alone adds": the error that tensor alone back in ` +
        'int8 adds to the logits, as an SQNR (lower: more harm), measured when mnq calibrate --int16 auto chose it)');
    }
  }
  if (r.flipCount) {
    L.push('');
    L.push(`top-1 flipped on ${r.flipCount} of ${r.images} images (float vs int8 ${r.flipEngine}; labels: ${r.labels}):`);
    const shown = r.flips.slice(0, 10);
    for (const f of shown) L.push(`  ${path.basename(f.file)}: float ${topText(f.float)}, int8 ${topText(f.int8)}${f.truth >= 0 ? ` (${rightOne(f)})` : ''}`);
    if (r.flipCount > shown.length) L.push(`  ... and ${r.flipCount - shown.length} more (--json and --html list ${r.flipCount > r.flips.length ? `the first ${r.flips.length}` : 'them all'})`);
  }
  return L.join('\n');
}

const topText = (t: Top1) => `${t.label} ${(100 * t.probability).toFixed(1)}%`;
const rightOne = (f: Flip) => (f.truth === f.float.index ? 'float is right' : f.truth === f.int8.index ? 'int8 is right' : 'neither is right');

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]!));

/**
 * A self-contained HTML report (no scripts, no external resources): what made it, accuracy, an inline SVG chart of
 * the per-layer SQNR with the layers' names on its axis, the per-layer table, the images whose top-1 flipped (with
 * their thumbnails when the result has them) and the int8 model's metadata.
 */
export function compareHtml(r: CompareResult, title: string): string {
  const rows = r.layers;
  const pad = 40, bottom = 170, top = 20, plotH = 200;
  const bw = Math.max(10, rows.length ? 860 / rows.length : 0);
  const W = Math.max(900, Math.ceil(pad + rows.length * bw + 10));
  const H = top + plotH + bottom;
  const base = top + plotH;
  const finite = rows.map((x) => (Number.isFinite(x.sqnrDb) ? x.sqnrDb : 60));
  const maxDb = Math.max(40, ...finite);
  const bars = rows.map((x, i) => {
    const v = Math.max(0, finite[i]);
    const h = (plotH * v) / maxDb;
    const color = x.worst ? '#d62728' : '#1f77b4';
    const cx = pad + i * bw + bw / 2;
    const name = x.tensor.length > 28 ? `…${x.tensor.slice(-27)}` : x.tensor;
    return `<rect x="${(pad + i * bw).toFixed(1)}" y="${(base - h).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>${esc(x.tensor)}: ${f1(x.sqnrDb)} dB</title></rect>`
      + `<text class="layer" x="${cx.toFixed(1)}" y="${base + 6}" font-size="8" text-anchor="end" transform="rotate(-90 ${cx.toFixed(1)} ${base + 6})" dy="3">${esc(name)}</text>`;
  }).join('');
  const ticks = [0, 10, 20, 30, 40, 50, 60].filter((t) => t <= maxDb).map((t) => {
    const y = base - (plotH * t) / maxDb;
    return `<line x1="${pad}" x2="${W - 10}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${pad - 5}" y="${y + 4}" font-size="10" text-anchor="end">${t}</text>`;
  }).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${ticks}${bars}<text x="${W / 2}" y="${H - 4}" font-size="12" text-anchor="middle">layer (graph order)</text><text x="12" y="${top + plotH / 2}" font-size="12" transform="rotate(-90 12 ${top + plotH / 2})" text-anchor="middle">SQNR (dB)</text></svg>`;
  const acc = (name: string, a: Accuracy | undefined, agree?: number, note?: string) =>
    `<tr><td>${name}</td><td>${a ? f1(a.top1) : '—'}</td><td>${a ? f1(a.top5) : '—'}</td><td>${agree !== undefined ? f1(agree) + '%' : note ? esc(note) : ''}</td></tr>`;
  const layerRows = rows.map((x) => `<tr${x.worst ? ' class="worst"' : ''}><td>${esc(x.tensor)}</td><td>${esc(x.op)}</td><td>${f1(x.sqnrDb)}</td><td>${g4(x.scale)}</td><td>${x.zeroPoint}</td><td>[${g4(x.qmin)}, ${g4(x.qmax)}]</td><td>[${g4(x.fmin)}, ${g4(x.fmax)}]</td><td>${x.saturationPct.toFixed(3)}</td></tr>`).join('\n');
  const top1Cell = (t: Top1) => `${esc(t.label)} <span class="p">${(100 * t.probability).toFixed(1)}%</span>`;
  const flipRows = r.flips.map((f) => `<tr><td>${f.thumbnail ? `<img src="${f.thumbnail}" width="96" height="96" alt="">` : ''}</td><td>${esc(path.basename(f.file))}</td>`
    + `<td>${top1Cell(f.float)}</td><td>${top1Cell(f.int8)}</td><td>${f.truth >= 0 ? rightOne(f) : '—'}</td></tr>`).join('\n');
  const flipsSection = r.flipCount
    ? `<h2>Images whose top-1 flipped</h2>
<p>${r.flipCount} of ${r.images} images: the int8 model (${r.flipEngine}) and the float model disagree on top-1${r.flipCount > r.flips.length ? ` (the first ${r.flips.length} below)` : ''}. Labels: ${esc(r.labels)}; probabilities are each model's softmax.</p>
<table><tr><th></th><th>image</th><th>float top-1</th><th>int8 top-1</th><th>truth</th></tr>
${flipRows}
</table>`
    : `<h2>Images whose top-1 flipped</h2><p>None: int8 (${r.flipEngine}) and float agree on the top-1 of every image.</p>`;
  const noLabels = r.floatOrt.labelled ? '' : '<p>No image is labelled (an ImageNet wnid in the file name, e.g. n01440764_tench.JPEG): top-1 / top-5 are not measured.</p>';
  const warnings = r.warnings.map((w) => `<p class="warn">warning: ${esc(w)}</p>`).join('\n');
  const md = Object.entries(r.metadata).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}tr.worst{background:#fdd}.made{color:#555;font-size:13px}.warn{color:#a00}.p{color:#555}</style>
</head><body>
<h1>${esc(title)}</h1>
<p class="made">Made by mnq ${esc(r.made.mnq)} on ${esc(r.made.date)}${r.made.command ? ` with <code>${esc(r.made.command)}</code>` : ''}.</p>
${warnings}
<p>${r.images} images (${r.floatOrt.labelled} labelled${r.skipped ? `, ${r.skipped} skipped` : ''}), preprocessing ${esc(r.preprocess)}, ${r.classes} classes.</p>
<table><tr><th></th><th>top-1 %</th><th>top-5 %</th><th>top-1 agreement with float</th></tr>
${acc('float (ONNX Runtime)', r.floatOrt)}
${acc('int8 (mnq)', r.int8Mnq, r.agreementMnq, r.mnqNote)}
${acc('int8 (ONNX Runtime)', r.int8Ort, r.agreementOrt)}
</table>
${noLabels}
<p>Logits, int8 (ONNX Runtime) vs float: SQNR ${f1(r.logitsSqnrDb)} dB, cosine ${r.logitsCosine.toFixed(4)}.${r.mnqVsOrt ? ` int8 mnq vs int8 ONNX Runtime: same top-1 on ${f1(r.mnqVsOrt.top1Agreement)}% of images, identical outputs on ${f1(r.mnqVsOrt.identicalPct)}%.` : ''}</p>
${flipsSection}
<h2>Per-layer SQNR</h2>
${svg}
<p>Red: the worst layers (the 5 lowest SQNR, or below 15 dB).</p>
<table><tr><th>tensor</th><th>op</th><th>SQNR dB</th><th>scale</th><th>zero point</th><th>int8 range</th><th>float range</th><th>saturation %</th></tr>
${layerRows}
</table>
<h2>Model metadata</h2><table>${md}</table>
</body></html>
`;
}

export { toNum };
