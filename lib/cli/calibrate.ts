// `mnq calibrate <float.onnx> --images DIR [...] -o <int8.onnx>`
import { calibrate, writeOutput, METHODS, Method } from '../calibrate/index';

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
  --calibrate-clip       calibrate ReLU6 / Clip outputs too: [0, min(6, calibrated max)] instead of [0, 6]
  --bias-correction      shift each spatial Conv's bias by its mean int8-vs-float output error, measured
                         layer by layer on the first 32 calibration images (slower: one pass per Conv)
  --bias-correction-all  the same, 1×1-pixel outputs (SE convolutions) included
  --force                overwrite the output file
  --json                 print the result as JSON (no progress bar)
  -h, --help             this help`;

export interface ParsedArgs { positional: string[]; flags: Map<string, string[]> }

/** Splits argv into positionals and --flag values; `bool` names take no value. */
export function parseArgs(argv: string[], valued: string[], bool: string[], alias: Record<string, string> = {}): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (alias[a]) a = alias[a];
    if (a.startsWith('--')) {
      let name = a.slice(2), value: string | undefined;
      const eq = name.indexOf('=');
      if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
      if (bool.includes(name)) {
        if (value !== undefined) throw new Error(`--${name} takes no value`);
        flags.set(name, ['true']);
      } else if (valued.includes(name)) {
        if (value === undefined) {
          if (i + 1 >= argv.length) throw new Error(`--${name} needs a value`);
          value = argv[++i];
        }
        flags.set(name, [...(flags.get(name) ?? []), value]);
      } else throw new Error(`unknown option --${name}`);
    } else positional.push(a);
  }
  return { positional, flags };
}

function positiveInt(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${what} must be a positive integer, got '${v}'`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) { console.log(USAGE); return 0; }
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, ['images', 'output', 'method', 'percentile', 'preprocess', 'limit', 'exclude'], ['per-tensor', 'force', 'json', 'equalize', 'equalize-hswish', 'equalize-stem', 'bias-correction', 'bias-correction-all', 'calibrate-clip'], { '-o': '--output' });
  } catch (e) {
    console.error(`mnq calibrate: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const f = (k: string) => args.flags.get(k)?.[args.flags.get(k)!.length - 1];
  const json = args.flags.has('json');
  if (args.positional.length !== 1 || !f('images') || !f('output')) {
    console.error(`mnq calibrate: need one float model, --images DIR and -o FILE\n\n${USAGE}`);
    return 2;
  }
  const method = (f('method') ?? 'minmax') as Method;
  if (!METHODS.includes(method)) { console.error(`mnq calibrate: unknown --method '${method}' (use ${METHODS.join(', ')})`); return 2; }
  const out = f('output')!;
  const force = args.flags.has('force');
  const fsMod = await import('fs');
  if (fsMod.existsSync(out) && !force) {
    console.error(`mnq calibrate: output '${out}' exists: use --force to overwrite it`);
    return 1;
  }
  let percentile: number | undefined;
  if (f('percentile') !== undefined) {
    percentile = Number(f('percentile'));
    if (!(percentile > 0 && percentile <= 100)) { console.error(`mnq calibrate: --percentile must be in (0, 100], got '${f('percentile')}'`); return 2; }
  }
  const warnings: string[] = [];
  const r = await calibrate(args.positional[0], {
    images: f('images')!,
    method,
    percentile,
    preprocess: f('preprocess'),
    perTensor: args.flags.has('per-tensor'),
    equalize: args.flags.has('equalize') ? true : args.flags.has('equalize-hswish') ? 'hswish' : args.flags.has('equalize-stem') ? 'stem' : false,
    biasCorrection: args.flags.has('bias-correction-all') ? 'all' : args.flags.has('bias-correction'),
    calibrateClip: args.flags.has('calibrate-clip'),
    limit: positiveInt(f('limit'), '--limit'),
    exclude: (args.flags.get('exclude') ?? []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean),
    onWarning: (m) => { warnings.push(m); if (!json) console.error(`warning: ${m}`); },
    progress: !json,
  });
  writeOutput(out, r.bytes, force);
  if (json) {
    console.log(JSON.stringify({
      output: out, method: r.method, preprocess: r.preprocess, labels: r.labels ?? null,
      imagesUsed: r.imagesUsed, imagesSkipped: r.imagesSkipped, warnings, normalize: r.normalizeLog, tensors: r.tensors,
    }, null, 2));
  } else {
    console.log(`wrote ${out}: int8 QDQ, ${r.tensors.length} quantized tensors, method ${r.method}, preprocessing ${r.preprocess}` +
      `, ${r.imagesUsed} calibration images${r.imagesSkipped ? ` (${r.imagesSkipped} skipped)` : ''}`);
  }
  return 0;
}
