// `mnq bench-classify DIR --model M [--batch 32] [--threads 2] [--vs-ort] [--limit N] [--repeat R] [--json]`
// End-to-end throughput of classifying a directory of images (decode + preprocess + inference + top-k),
// and top-1 / top-5 where file names carry ImageNet wnids, with mnq and, with --vs-ort, with the best sharp + onnxruntime-node pipeline on the same model file:
// the same decode code, the same batching and decode/inference overlap, ORT running the int8 ONNX file
// with float input and `threads` intra-op threads.
import * as os from 'os';
import { Classifier, ClassifierModel, loadOrtModel } from '../classify';
import { listImageFiles, loadClassifierModel, modelDefaults } from './classify';
import { parseArgs, reportUsageError } from './args';
import { resolveModelPath } from './fetch';
import { imagenetClassOfFile } from '../labels';
import { MAX_THREADS } from '../native';
import { readModel } from '../onnx/proto';

export const summary = 'end-to-end images/s of classifying a directory, mnq vs sharp + ONNX Runtime';

const HELP = `usage: mnq bench-classify DIR --model M [--batch 32] [--threads 2] [--vs-ort] [--limit N] [--repeat R] [--json]

  -m, --model M int8 ONNX model file or fetched model name (default: mobilenet_v2_1.0_224_quant.qdq)
  --batch B     images per run (default 32)
  --threads N   inference threads for mnq and for ORT (default 2)
  --vs-ort      also run the sharp + onnxruntime-node pipeline on the same model and print the ratio
  --ort-only    only the ORT pipeline (when mnq is not built)
  --limit N     use the first N images of DIR
  --repeat R    passes over the images per engine, alternating engines; the best pass counts (default 3)
  --decoders N  images decoded at once (default: from cores and threads)
  --json        one JSON object`;

/**
 * Why ORT's top-1 may differ from mnq's on an int8 file, where it may: the ORT pipeline runs ORT's default session
 * (the speed its users get), which on x86 runs some int8 nodes in float32 (lib/ort/session.ts, 'x86-default').
 */
export function ortDefaultSessionNote(modelFile: string, arch: string = process.arch): string | undefined {
  if (arch !== 'x64' && arch !== 'ia32') return undefined;
  let quantized: boolean;
  try {
    quantized = (readModel(modelFile).graph?.node ?? []).some((n) => /^(QuantizeLinear|QLinear)/.test(n.opType ?? ''));
  } catch {
    return undefined; // loading the model reports that
  }
  if (!quantized) return undefined;
  return "sharp+ort runs the int8 model in ONNX Runtime's default x86 session, which is not integer arithmetic "
    + 'throughout (it runs some Conv / Add nodes in float32 between DequantizeLinear and QuantizeLinear), so its top-1 '
    + "can differ from mnq's on a few images; `mnq check-ort` compares mnq with ORT's exact integer execution";
}

interface Pass { seconds: number; images: number; failed: number; labelled: number; top1: number; top5: number }

async function pass(model: ClassifierModel, files: string[], batch: number, threads: number, decoders: number | undefined, pre: { preprocess?: string; labels?: string | string[] }, int8: boolean): Promise<Pass> {
  const c = new Classifier(model, { batchSize: batch, decoders, modelThreads: threads, preprocess: pre.preprocess, labels: pre.labels, int8, topK: 5 });
  const t0 = process.hrtime.bigint();
  let failed = 0;
  let images = 0;
  let labelled = 0;
  let top1 = 0;
  let top5 = 0;
  for await (const r of c.classifyEach(files)) {
    images++;
    if (r.error) failed++;
    // accuracy where the file name carries an ImageNet wnid and the model has ImageNet labels
    const cls = imagenetClassOfFile(r.image);
    const offset = c.labels?.imagenetOffset;
    if (cls >= 0 && offset !== undefined && r.predictions) {
      labelled++;
      const idx = r.predictions.map((p) => p.index);
      if (idx[0] === cls + offset) top1++;
      if (idx.includes(cls + offset)) top5++;
    }
  }
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, images, failed, labelled, top1, top5 };
}

const FLAGS = {
  model: { type: 'string', short: 'm' }, batch: { type: 'string' }, threads: { type: 'string' }, 'vs-ort': { type: 'boolean' },
  'ort-only': { type: 'boolean' }, limit: { type: 'string' }, repeat: { type: 'string' }, decoders: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The options, or null for --help; throws a UsageError for bad usage. */
function parseOptions(argv: string[]) {
  const args = parseArgs(argv, FLAGS);
  if (args.help) return null;
  return {
    dir: args.single('directory of images'),
    model: args.string('model'),
    batch: args.int('batch', { min: 1 }) ?? 32,
    threads: args.int('threads', { min: 1, max: MAX_THREADS }) ?? 2,
    repeat: args.int('repeat', { min: 1 }) ?? 3,
    limit: args.int('limit', { min: 1 }) ?? Infinity,
    decoders: args.int('decoders', { min: 1 }),
    vsOrt: args.bool('vs-ort'),
    ortOnly: args.bool('ort-only'),
    json: args.bool('json'),
  };
}

export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (e) {
    return reportUsageError('bench-classify', e, HELP);
  }
  if (!parsed) {
    console.log(HELP);
    return 0;
  }
  const v = parsed;
  const { dir, batch, threads, repeat, limit, decoders } = v;
  const files = listImageFiles(dir).slice(0, limit);
  if (!files.length) throw new Error(`no image files in '${dir}'`);
  const modelFile = resolveModelPath(v.model ?? 'mobilenet_v2_1.0_224_quant.qdq');
  const pre = await modelDefaults(modelFile);

  const engines: { name: string; model: ClassifierModel & { release?(): Promise<void>; dispose?(): void }; int8: boolean }[] = [];
  if (!v.ortOnly) engines.push({ name: 'mnq', model: await loadClassifierModel(modelFile, 'mnq', threads), int8: true });
  if (v.vsOrt || v.ortOnly) engines.push({ name: 'sharp+ort', model: await loadOrtModel(modelFile, { threads }), int8: false });

  const best = new Map<string, Pass>();
  try {
    // warm-up: one batch each
    for (const e of engines) await pass(e.model, files.slice(0, Math.min(batch, files.length)), batch, threads, decoders, pre, e.int8);
    for (let r = 0; r < repeat; r++) {
      for (const e of engines) {
        const p = await pass(e.model, files, batch, threads, decoders, pre, e.int8);
        if (!v.json && process.stderr.isTTY) process.stderr.write(`${e.name} pass ${r + 1}: ${(p.images / p.seconds).toFixed(1)} img/s\n`);
        const b = best.get(e.name);
        if (!b || p.seconds < b.seconds) best.set(e.name, p);
      }
    }
  } finally {
    for (const e of engines) {
      if (typeof e.model.release === 'function') await e.model.release();
      else if (typeof e.model.dispose === 'function') e.model.dispose();
    }
  }
  const rows = engines.map((e) => {
    const p = best.get(e.name) as Pass;
    const acc = (k: number) => (p.labelled ? +((100 * k) / p.labelled).toFixed(1) : undefined);
    return {
      engine: e.name, images: p.images, failed: p.failed, seconds: +p.seconds.toFixed(3), imagesPerSecond: +(p.images / p.seconds).toFixed(1),
      labelled: p.labelled, top1: acc(p.top1), top5: acc(p.top5),
    };
  });
  const mnqRow = rows.find((r) => r.engine === 'mnq');
  const ortRow = rows.find((r) => r.engine === 'sharp+ort');
  const ratio = mnqRow && ortRow ? +(mnqRow.imagesPerSecond / ortRow.imagesPerSecond).toFixed(2) : undefined;
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism?.() ?? os.cpus().length} cores, ${process.platform}-${process.arch}`;
  const ortNote = engines.some((e) => e.name === 'sharp+ort') ? ortDefaultSessionNote(modelFile) : undefined;
  if (v.json) {
    console.log(JSON.stringify({ model: modelFile, dir, images: files.length, batch, threads, repeat, machine, results: rows, ratio, ...(ortNote ? { ortNote } : {}) }));
  } else {
    console.log(`model ${modelFile}\n${files.length} images from ${dir}, batch ${batch}, threads ${threads}, best of ${repeat} passes\n${machine}\n`);
    console.log(`${'engine'.padEnd(12)}${'img/s'.padStart(10)}${'seconds'.padStart(10)}${'failed'.padStart(8)}${'top-1 %'.padStart(10)}${'top-5 %'.padStart(10)}`);
    for (const r of rows) {
      const a = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(1)).padStart(10);
      console.log(`${r.engine.padEnd(12)}${r.imagesPerSecond.toFixed(1).padStart(10)}${r.seconds.toFixed(2).padStart(10)}${String(r.failed).padStart(8)}${a(r.top1)}${a(r.top5)}`);
    }
    if (rows.some((r) => r.labelled)) console.log(`(top-1 / top-5 over the ${rows[0].labelled} images whose file name has an ImageNet wnid)`);
    if (ortNote) console.log(`note: ${ortNote}`);
    if (ratio !== undefined) console.log(`\nmnq / sharp+ort: ${ratio.toFixed(2)}x images/s`);
  }
  return rows.some((r) => r.failed) ? 1 : 0;
}
