// `mnq calibrate <float.onnx> --images DIR [...] -o <int8.onnx>`
import { calibrate, writeOutput, METHODS, Method } from '../calibrate/index';
import { formatInt16, Int16Target } from '../calibrate/int16';
import { parseArgs, reportUsageError, UsageError } from './args';
import { checkInstalled } from '../optional-dependencies';

export const summary = 'quantize a float ONNX MobileNet to int8 QDQ ONNX from calibration images';

const USAGE = `usage: mnq calibrate <float.onnx> --images DIR -o <int8.onnx> [options]

  --images DIR           calibration images (a folder, or one image); never the evaluation set
  -o, --output FILE      the int8 QDQ ONNX file to write
  --method M             ${METHODS.join(' | ')} (default minmax)
  --percentile P         for --method percentile (default 99.99)
  --preprocess P         tf | torch | raw | paddle | JSON spec (default: the model's metadata, else a guess)
  --per-tensor           one weight scale per tensor instead of per output channel
  --limit N              use the first N images only
  --exclude NODE         keep NODE in float (repeatable, or comma-separated)
  --equalize             cross-layer range equalization of Conv → [Relu →] Conv and Conv → HardSwish →
                         depthwise Conv first (h-swish split into Conv·s × HardSigmoid)
  --equalize-hswish      only the HardSwish → depthwise equalization (best for Keras MobileNetV3)
  --equalize-stem        only the stem: Conv → ReLU6 → depthwise, the stem's narrow channels scaled up to
                         fill [0, 6] (best for MobileNetV1 0.5)
  --split-stem           split the stem's ReLU6 output (Conv → ReLU6 → depthwise) into two ranges, [0, 3]
                         and [3, 6], summed by the depthwise: the same function, a 2× finer int8 step there
                         (with --equalize-stem: best for MobileNetV1 0.5; 2× the first activation and the
                         first depthwise's work)
  --calibrate-clip       calibrate ReLU6 / Clip outputs too: [0, min(6, calibrated max)] instead of [0, 6]
  --bias-correction      shift each spatial Conv's bias by its mean int8-vs-float output error, measured
                         layer by layer on the first 32 calibration images (slower: one pass per Conv)
  --bias-correction-all  the same, 1×1-pixel outputs (SE convolutions) included
  --gptq                 round each spatial Conv's weights to int8 by GPTQ on its int8 inputs, layer by layer
                         (for float weights not already on an int8 grid; slower: one pass per Conv)
  --int16 auto|LIST      mixed precision: int16 activations where int8 loses accuracy. auto: measured in
                         mnq's runtime on the calibration images, as few int16 tensors as meet the target;
                         LIST: these tensors, nodes or op types (e.g. HardSwish,Add), comma-separated
  --target-agreement P   --int16 auto: top-1 agreement with float on the calibration images, % (default 98)
  --target-sqnr DB       --int16 auto: a logits SQNR against float instead of agreement
  --int16-budget P%      --int16 auto: at most P% of the multiply-adds read int16 activations (default 100%)
  --force                overwrite the output file
  --json                 print the result as JSON (no progress bar)
  -h, --help             this help`;

const FLAGS = {
  images: { type: 'string' }, output: { type: 'string', short: 'o' }, method: { type: 'string' },
  percentile: { type: 'string' }, preprocess: { type: 'string' }, limit: { type: 'string' },
  exclude: { type: 'string', repeatable: true },
  'per-tensor': { type: 'boolean' }, force: { type: 'boolean' }, json: { type: 'boolean' },
  equalize: { type: 'boolean' }, 'equalize-hswish': { type: 'boolean' }, 'equalize-stem': { type: 'boolean' },
  'bias-correction': { type: 'boolean' }, 'bias-correction-all': { type: 'boolean' }, 'calibrate-clip': { type: 'boolean' },
  gptq: { type: 'boolean' }, 'split-stem': { type: 'boolean' },
  int16: { type: 'string' }, 'target-agreement': { type: 'string' }, 'target-sqnr': { type: 'string' },
  'int16-budget': { type: 'string' },
} as const;

export async function run(argv: string[]): Promise<number> {
  let model: string, images: string, out: string, method: Method, percentile: number | undefined, limit: number | undefined;
  let args: ReturnType<typeof parseArgs<typeof FLAGS>>;
  let int16: 'auto' | string[] | undefined, target: Int16Target = {};
  try {
    args = parseArgs(argv, FLAGS);
    if (args.help) { console.log(USAGE); return 0; }
    checkInstalled(['onnxruntime-node']);
    model = args.single('float model');
    images = args.required('images', '--images DIR is required');
    out = args.required('output', '-o/--output FILE is required');
    method = args.choice('method', METHODS) ?? 'minmax';
    percentile = args.number('percentile', { above: 0 });
    if (percentile !== undefined && percentile > 100) throw new UsageError(`--percentile must be in (0, 100], got '${args.string('percentile')}'`);
    limit = args.int('limit', { min: 1 });
    const i16 = args.string('int16');
    if (i16 !== undefined) {
      int16 = i16 === 'auto' ? 'auto' : i16.split(',').map((x) => x.trim()).filter(Boolean);
      if (!int16.length) throw new UsageError(`--int16 takes 'auto' or a comma-separated list of tensors, nodes or op types`);
    }
    const agreement = args.number('target-agreement', { above: 0 });
    if (agreement !== undefined && agreement > 100) throw new UsageError(`--target-agreement is a percentage in (0, 100], got '${args.string('target-agreement')}'`);
    const sqnrDb = args.number('target-sqnr');
    const b = args.string('int16-budget');
    let budget: number | undefined;
    if (b !== undefined) {
      const v = Number(b.replace(/%$/, ''));
      if (!(v >= 0 && v <= 100)) throw new UsageError(`--int16-budget is a share of the multiply-adds such as 25%, got '${b}'`);
      budget = v / 100;
    }
    if ((agreement !== undefined || sqnrDb !== undefined || budget !== undefined) && int16 !== 'auto') {
      throw new UsageError('--target-agreement, --target-sqnr and --int16-budget go with --int16 auto');
    }
    if (agreement !== undefined && sqnrDb !== undefined) throw new UsageError('give --target-agreement or --target-sqnr, not both');
    target = { agreement, sqnrDb, budget };
  } catch (e) {
    return reportUsageError('calibrate', e, USAGE);
  }
  const json = args.bool('json');
  const force = args.bool('force');
  const fsMod = await import('fs');
  if (fsMod.existsSync(out) && !force) {
    console.error(`mnq calibrate: output '${out}' exists: use --force to overwrite it`);
    return 1;
  }
  const warnings: string[] = [];
  const r = await calibrate(model, {
    images,
    method,
    percentile,
    preprocess: args.string('preprocess'),
    perTensor: args.bool('per-tensor'),
    equalize: args.bool('equalize') ? true : args.bool('equalize-hswish') ? 'hswish' : args.bool('equalize-stem') ? 'stem' : false,
    biasCorrection: args.bool('bias-correction-all') ? 'all' : args.bool('bias-correction'),
    calibrateClip: args.bool('calibrate-clip'),
    gptq: args.bool('gptq'),
    splitStem: args.bool('split-stem'),
    int16,
    int16Target: target,
    limit,
    exclude: args.strings('exclude').flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean),
    onWarning: (m) => { warnings.push(m); if (!json) console.error(`warning: ${m}`); },
    progress: !json,
  });
  writeOutput(out, r.bytes, force);
  if (json) {
    console.log(JSON.stringify({
      output: out, method: r.method, preprocess: r.preprocess, labels: r.labels ?? null,
      imagesUsed: r.imagesUsed, imagesSkipped: r.imagesSkipped, warnings, normalize: r.normalizeLog, tensors: r.tensors,
      int16: r.int16 ?? null,
    }, null, 2));
  } else {
    const n16 = r.int16?.tensors.length ?? 0;
    console.log(`wrote ${out}: ${n16 ? 'int8 / int16' : 'int8'} QDQ, ${r.tensors.length} quantized tensors${n16 ? ` (${n16} int16)` : ''}, method ${r.method}, ` +
      `preprocessing ${r.preprocess}, ${r.imagesUsed} calibration images${r.imagesSkipped ? ` (${r.imagesSkipped} skipped)` : ''}`);
    if (r.int16) console.log(formatInt16(r.int16));
  }
  return 0;
}
