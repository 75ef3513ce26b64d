// `mnq check-ort <model.onnx> [--images DIR] [--count N] [--layers] [--json] [--threads N]`
// Runs an int8 ONNX model through mnq and ONNX Runtime on the same images and
// compares the int8 tensors before each final DequantizeLinear (and, with
// --layers, every intermediate int8 tensor, reporting the first that differs).
import * as fs from 'fs';
import * as path from 'path';
import { load } from '../model';
import { openOrtInt8 } from '../ort/int8-reference';
import { ortReferenceCaveat } from '../ort/cpu';
import { fileMetadata, METADATA_KEYS } from '../onnx/metadata';
import { ImagePipeline, imageInLayout, imageShape } from '../image';
import { parsePreprocess, PreprocessSpec } from '../preprocess-spec';
import { topK } from '../numerics/softmax';
import { parseArgs, reportUsageError, UsageError } from './args';
import { MAX_THREADS } from '../native';
import { checkInstalled } from '../optional-dependencies';

export const summary = 'compare a model\'s int8 outputs (and layers) with ONNX Runtime on images';

const USAGE = `usage: mnq check-ort <model.onnx> [options]
  --images DIR     images to run (jpg/png; default: ../shared/data/coral or $MNQ_SHARED/data/coral)
  --count N        at most N images (default 8)
  --preprocess P   tf | torch | raw | paddle | JSON spec (as for classify / calibrate); default: the model's
                   metadata (mnq.preprocess, written by mnq calibrate), else guessed from the file name
  --layers         also compare every intermediate int8 tensor
  --threads N      mnq threads (default 1)
  --ort-x86-default  run ORT with its x86 default QDQ handling (int8 QDQ converted to uint8 pair by pair;
                   Conv/Add next to a tensor with several readers fall back to float32) instead of its
                   integer QDQ execution (session.qdqisint8allowed = 1, ORT's default on ARM)
  --json           print JSON
Passes (exit 0) when every output is identical to ORT's (every int8 value) on every image. With
--ort-x86-default ORT computes parts of the graph in float32, so no bit rule applies: it passes when the
top-1 agrees on every image. On a CPU other than x86-64 ORT's own integer kernels differ from its x86 ones
(QLinearAdd in fixed point), and mnq gives the x86 results: the comparison is printed with that note.`;

interface TensorReport { name: string; identical: number; maxDiff: number; elements: number }

const FLAGS = {
  images: { type: 'string' }, count: { type: 'string' }, preprocess: { type: 'string' }, layers: { type: 'boolean' },
  threads: { type: 'string' }, 'ort-x86-default': { type: 'boolean' }, json: { type: 'boolean' },
} as const;

/** The options, or null for --help; throws a UsageError for bad usage. */
function parseOptions(argv: string[]) {
  const args = parseArgs(argv, FLAGS);
  if (args.help) return null;
  const o = {
    model: args.single('model file'),
    images: args.string('images') ?? '',
    count: args.int('count', { min: 1 }) ?? 8,
    layers: args.bool('layers'),
    json: args.bool('json'),
    threads: args.int('threads', { min: 1, max: MAX_THREADS }) ?? 1,
    preprocess: args.string('preprocess') ?? '',
    x86Default: args.bool('ort-x86-default'),
  };
  if (o.preprocess) {
    try {
      parsePreprocess(o.preprocess); // a clear message for a bad name / spec
    } catch (e) {
      throw new UsageError(`--preprocess: ${(e as Error).message}`);
    }
  }
  return o;
}

function defaultImageDir(): string {
  const shared = process.env.MNQ_SHARED ?? path.resolve(__dirname, '..', '..', '..', 'shared');
  return path.join(shared, 'data', 'coral');
}

/**
 * The preprocessing of the images: --preprocess, else the model's mnq.preprocess metadata, else a guess
 * from the file name (torchvision-style exports: torch; everything else: tf).
 */
export function checkPreprocess(model: string | Uint8Array, option: string): { spec: PreprocessSpec; source: 'option' | 'metadata' | 'file name' } {
  if (option) return { spec: parsePreprocess(option), source: 'option' };
  const meta = fileMetadata(model)[METADATA_KEYS.preprocess];
  if (meta) return { spec: parsePreprocess(meta), source: 'metadata' };
  const base = typeof model === 'string' ? path.basename(model) : '';
  return { spec: parsePreprocess(/mobilenetv2-12|\.random\./.test(base) ? 'torch' : 'tf'), source: 'file name' };
}

function compare(a: Int8Array, b: Int8Array): { identical: number; maxDiff: number } {
  let same = 0, maxDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d === 0) same++;
    if (d > maxDiff) maxDiff = d;
  }
  return { identical: a.length ? same / a.length : 1, maxDiff };
}

export async function run(argv: string[]): Promise<number> {
  let o: ReturnType<typeof parseOptions>;
  try {
    o = parseOptions(argv);
  } catch (e) {
    return reportUsageError('check-ort', e, USAGE);
  }
  if (!o) {
    console.log(USAGE);
    return 0;
  }
  checkInstalled(['onnxruntime-node']);
  const dir = o.images || defaultImageDir();
  if (!fs.existsSync(dir)) throw new Error(`image directory '${dir}' not found (use --images DIR)`);
  const files = fs.readdirSync(dir).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort().slice(0, o.count).map((f) => path.join(dir, f));
  if (!files.length) throw new Error(`no images (jpg/png/webp) in '${dir}'`);
  const pp = checkPreprocess(o.model, o.preprocess);

  const model = await load(o.model, { threads: o.threads, keep: o.layers ? 'all' : undefined });
  const layerNames = o.layers ? model.compiled.kept.map((k) => k.name) : [];
  const ort = await openOrtInt8(o.model, layerNames, 1, o.x86Default);
  const { c, h, w } = model.compiled.input;
  const images = new ImagePipeline({ preprocess: pp.spec, width: w, height: h });
  if (images.width !== w || images.height !== h) throw new Error(`the preprocessing's size ${images.width}x${images.height} differs from the model input ${w}x${h}`);
  const outputNames = model.compiled.outputs.map((out) => model.compiled.plan.tensors[out.tensor].name);
  const acc = new Map<string, { same: number; total: number; maxDiff: number }>();
  let top1Agree = 0;
  try {
    const layout = model.compiled.input.layout;
    for (const file of files) {
      const x = imageInLayout(await images.float(file), c, h, w, layout);
      const ours = await model.runTensors(x, imageShape(c, h, w, layout));
      const theirs = await ort.run(x, imageShape(c, h, w, layout));
      const pairs: [string, string][] = [
        ...outputNames.map((n, i) => [n, ort.int8Outputs[i]] as [string, string]),
        ...ort.extra.map((n) => [n, n] as [string, string]),
      ];
      for (const [ourName, ortName] of pairs) {
        const a = ours.get(ourName), b = theirs.get(ortName);
        if (!a || !b || a.data.length !== b.data.length) continue;
        const r = compare(a.data, b.data);
        const s = acc.get(ortName) ?? { same: 0, total: 0, maxDiff: 0 };
        s.same += r.identical * a.data.length;
        s.total += a.data.length;
        s.maxDiff = Math.max(s.maxDiff, r.maxDiff);
        acc.set(ortName, s);
      }
      const a = ours.get(outputNames[0])!.data, b = theirs.get(ort.int8Outputs[0])!.data;
      if (topK(a, 1)[0] === topK(b, 1)[0]) top1Agree++;
    }
  } finally {
    model.dispose();
    await ort.release();
  }
  const report = (name: string): TensorReport => {
    const s = acc.get(name)!;
    return { name, identical: s.same / s.total, maxDiff: s.maxDiff, elements: s.total };
  };
  const outputs = ort.int8Outputs.filter((n) => acc.has(n)).map(report);
  const layers = o.layers ? model.compiled.kept.map((k) => k.name).filter((n) => acc.has(n)).map(report) : [];
  const firstDivergent = layers.find((l) => l.identical < 1) ?? null;
  const rule = o.x86Default ? 'same top-1 on every image' : 'every output identical';
  const pass = top1Agree === files.length && (o.x86Default || outputs.every((r) => r.identical === 1));
  const result = {
    model: o.model, images: files.length, preprocess: pp.spec.name, preprocessSource: pp.source, isa: model.isa, ortQdq: o.x86Default ? 'x86-default' : 'int8-allowed', ortMode: ort.mode, pass, passRule: rule, top1Agree,
    outputs, ...(o.layers ? { layers, firstDivergent: firstDivergent?.name ?? null } : {}),
  };
  if (o.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    console.log(`${path.basename(o.model)}: ${files.length} images (preprocess ${pp.spec.name}, from the ${pp.source}), mnq (${model.isa}) vs ONNX Runtime (${ort.mode})`);
    const line = (r: TensorReport) => `  ${r.name.padEnd(32)} ${(r.identical * 100).toFixed(3).padStart(8)}% identical  max diff ${r.maxDiff}`;
    console.log('outputs:');
    outputs.forEach((r) => console.log(line(r)));
    console.log(`  top-1 agrees on ${top1Agree}/${files.length} images`);
    if (o.layers) {
      console.log(`layers (${layers.length} int8 tensors exposed by ORT):`);
      layers.forEach((r) => console.log(line(r)));
      console.log(firstDivergent ? `first tensor that differs: ${firstDivergent.name}` : 'all compared tensors identical');
    }
    const caveat = ortReferenceCaveat();
    if (caveat) console.log(`note: ORT is an exact reference only as ${caveat}`);
    console.log(pass ? `PASS (${rule})` : `FAIL (needs ${rule})`);
  }
  return pass ? 0 : 1;
}
