// `mnq classify <image|dir|glob>... --model <model.onnx|name> [--top 5] [--batch 32] [--threads N] [--json]`
// Prints the top-k classes of each image. Per-image errors go to stderr and the run goes on; the exit code
// is 1 if any image failed (with a summary), 2 for bad usage.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Classifier, ClassifierModel, ClassifyOptions, loadOrtModel, Prediction } from '../classify';
import { ImageError } from '../image';
import { UnsupportedModelError } from '../compiler';
import { fileMetadata, METADATA_KEYS } from '../onnx/metadata';
import { parsePreprocess, PreprocessSpec } from '../preprocess-spec';
import { loadLabels, Labels } from '../labels';
import { parseArgs, reportUsageError, UsageError } from './args';
import { findModelBySha, loadManifest, resolveModelPath, sha256File } from './fetch';
import { MAX_THREADS } from '../native';

export const summary = 'classify images (files, directories, globs) with a model: top-k labels';

/** File extensions sharp decodes, for directory listings and globs (explicit files are tried whatever their name). */
export const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp|gif|tiff?|avif|heic|heif|svg|jp2|jxl)$/i;

const HELP = `usage: mnq classify <image|dir|glob>... --model <model.onnx|name> [options]

  -m, --model M     an ONNX model file, or the name of a model fetched with 'mnq fetch'
  -k, --top K       classes per image (default 5)
  -b, --batch B     images per inference run (default 32)
  -t, --threads N   inference threads (default: all ${cores()} cores); image decoding is sized to match
  --json            JSON Lines: {"image", "predictions": [{label, index, probability}]} or {"image", "error"}
  --labels FILE     label file (one per line) or set ('imagenet-1001', 'imagenet-1000'); default from the model
  --preprocess P    'tf', 'torch', 'raw', 'paddle' or a JSON spec; default from the model
  --engine E        'mnq' (default) or 'ort' (ONNX Runtime; also runs float models)
  --max-pixels N    refuse images larger than N pixels (default 268402689)
  --decoders N      images decoded at once (default: from cores and threads)

Directories are searched recursively for image files; quote globs ('photos/**/*.jpg') to let mnq expand them.
Preprocessing and labels come from, in order: the options, the model's metadata (mnq.preprocess, mnq.labels),
the model manifest (known models, by sha256), else the class count (1001: tf; 1000: torch).`;

function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

// ---------------------------------------------------------------------------------------------------
// Inputs: files, directories, globs

/** Image files under a directory, recursively, sorted. */
export function listImageFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    const entries = fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if ((e.isFile() || e.isSymbolicLink()) && IMAGE_EXTENSIONS.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
        i += glob[i + 2] === '/' ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = glob.indexOf(']', i + 1);
      if (j < 0) re += '\\[';
      else {
        re += '[' + glob.slice(i + 1, j).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Files matching a glob (*, ?, [..], **), sorted. */
export function expandGlob(pattern: string): string[] {
  const norm = pattern.split(path.sep).join('/');
  const parts = norm.split('/');
  const firstGlob = parts.findIndex((p) => /[*?[]/.test(p));
  const base = parts.slice(0, firstGlob).join('/') || (norm.startsWith('/') ? '/' : '.');
  if (!fs.existsSync(base) || !fs.statSync(base).isDirectory()) return [];
  const re = globToRegExp(norm.startsWith('./') ? norm.slice(2) : norm);
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = d === '.' ? e.name : `${d === '/' ? '' : d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (re.test(p)) out.push(p);
    }
  };
  walk(base);
  return out.sort();
}

/** Expands the image arguments; arguments that give no image come back as errors. */
export function expandInputs(args: string[]): { files: string[]; errors: ImageError[] } {
  const files: string[] = [];
  const errors: ImageError[] = [];
  for (const a of args) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(a);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) {
      const found = listImageFiles(a);
      if (!found.length) errors.push(new ImageError(a, 'directory contains no image files (.jpg, .png, .webp, …)'));
      files.push(...found);
    } else if (st) {
      files.push(a);
    } else if (/[*?[]/.test(a)) {
      const found = expandGlob(a).filter((f) => IMAGE_EXTENSIONS.test(f));
      if (!found.length) errors.push(new ImageError(a, 'no image files match this pattern'));
      files.push(...found);
    } else {
      errors.push(new ImageError(a, 'file not found'));
    }
  }
  return { files, errors };
}

// ---------------------------------------------------------------------------------------------------
// Model

export type Engine = 'mnq' | 'ort';

/** Loads a model for classification with mnq (int8) or ONNX Runtime. */
export async function loadClassifierModel(file: string, engine: Engine, threads: number): Promise<ClassifierModel & { release?(): Promise<void>; dispose?(): void }> {
  if (engine === 'ort') return loadOrtModel(file, { threads });
  let mnq: { load(p: string | Uint8Array, o: { threads?: number }): Promise<ClassifierModel> };
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    mnq = require('../model');
  } catch (e) {
    throw new Error(`the mnq runtime is not available (${(e as Error).message.split('\n')[0]}); build it with 'npm run build', or use --engine ort`);
  }
  try {
    return await mnq.load(file, { threads });
  } catch (e) {
    // a model mnq cannot run (a float model, an op it lacks): ONNX Runtime may run it
    if (e instanceof UnsupportedModelError) e.message = `${e.message} (mnq runs int8 models; '--engine ort' runs any model with ONNX Runtime)`;
    throw e;
  }
}

/** Preprocessing and labels for a model file: options, then metadata, then the manifest (by sha256). */
export async function modelDefaults(file: string): Promise<{ preprocess?: string; labels?: string | string[]; from?: string }> {
  let meta: Record<string, string> = {};
  try {
    meta = fileMetadata(file);
  } catch {
    meta = {};
  }
  const out: { preprocess?: string; labels?: string | string[]; from?: string } = {};
  if (meta[METADATA_KEYS.preprocess]) out.preprocess = meta[METADATA_KEYS.preprocess];
  if (meta[METADATA_KEYS.labels]) out.labels = meta[METADATA_KEYS.labels];
  if (out.preprocess && out.labels) return { ...out, from: 'metadata' };
  try {
    const entry = findModelBySha(loadManifest(), await sha256File(file));
    if (entry) {
      out.preprocess ??= entry.preprocess;
      out.labels ??= entry.labels;
      out.from = `manifest (${entry.name})`;
    }
  } catch {
    // no manifest: fall back to the class count
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Output

function formatText(image: string, preds: Prediction[]): string {
  const lines = [image];
  for (const p of preds) lines.push(`  ${(100 * p.probability).toFixed(2).padStart(6)}%  ${p.label}  (${p.index})`);
  return lines.join('\n');
}

/** Seconds as m:ss or h:mm:ss ('--:--' when unknown). */
export function duration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A progress bar with rate and ETA on stderr, only when stderr is a terminal. */
export class ProgressBar {
  private readonly t0 = Date.now();
  private lastDraw = 0;
  private shown = false;
  constructor(private readonly total: number, private readonly enabled: boolean) {}
  update(done: number, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const rate = done / Math.max(1e-3, (now - this.t0) / 1000);
    const w = 24;
    const f = Math.round((w * done) / Math.max(1, this.total));
    process.stderr.write(`\r\x1b[K[${'#'.repeat(f)}${'.'.repeat(w - f)}] ${done}/${this.total}  ${rate.toFixed(1)} img/s  ETA ${duration((this.total - done) / rate)}`);
    this.shown = true;
  }
  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}

// ---------------------------------------------------------------------------------------------------

const FLAGS = {
  model: { type: 'string', short: 'm' }, top: { type: 'string', short: 'k' }, batch: { type: 'string', short: 'b' },
  threads: { type: 'string', short: 't' }, json: { type: 'boolean' }, labels: { type: 'string' },
  preprocess: { type: 'string' }, engine: { type: 'string' }, 'max-pixels': { type: 'string' },
  decoders: { type: 'string' },
} as const;

interface Options {
  images: string[]; model: string; top: number; batch: number; threads: number; json: boolean;
  maxPixels?: number; decoders?: number; engine: Engine; preprocess?: PreprocessSpec; labels?: Labels;
}

/** The options, or null for --help; throws a UsageError for bad usage. */
function parseOptions(argv: string[]): Options | null {
  const args = parseArgs(argv, FLAGS);
  if (args.help) return null;
  const model = args.string('model');
  if (!model) throw new UsageError('--model is required');
  if (!args.positional.length) throw new UsageError('name at least one image, directory or glob');
  const o: Options = {
    images: args.positional,
    model,
    top: args.int('top', { min: 1 }) ?? 5,
    batch: args.int('batch', { min: 1 }) ?? 32,
    threads: args.int('threads', { min: 1, max: MAX_THREADS }) ?? cores(),
    json: args.bool('json'),
    maxPixels: args.int('max-pixels', { min: 1 }),
    decoders: args.int('decoders', { min: 1 }),
    engine: args.choice('engine', ['mnq', 'ort'] as const) ?? 'mnq',
  };
  return { ...o, ...parseClassifyFlags(args.string('preprocess'), args.string('labels')) };
}

/** The --preprocess and --labels values of a command that classifies, parsed; a UsageError naming the flag. */
export function parseClassifyFlags(preprocess: string | undefined, labels: string | undefined): { preprocess?: PreprocessSpec; labels?: Labels } {
  const out: { preprocess?: PreprocessSpec; labels?: Labels } = {};
  try {
    if (preprocess) out.preprocess = parsePreprocess(preprocess);
  } catch (e) {
    throw new UsageError(`--preprocess: ${(e as Error).message}`);
  }
  try {
    if (labels) out.labels = loadLabels(labels);
  } catch (e) {
    throw new UsageError(`--labels: ${(e as Error).message}`);
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  let parsed: Options | null;
  try {
    parsed = parseOptions(argv);
  } catch (e) {
    return reportUsageError('classify', e, HELP);
  }
  if (!parsed) {
    console.log(HELP);
    return 0;
  }
  const v = parsed;
  const { top, batch, threads, maxPixels, decoders, engine, preprocess, labels } = v;

  const modelFile = resolveModelPath(v.model);
  const { files, errors: argErrors } = expandInputs(v.images);
  const defaults = await modelDefaults(modelFile);
  const model = await loadClassifierModel(modelFile, engine, threads);
  const options: ClassifyOptions = {
    topK: top, batchSize: batch, limitInputPixels: maxPixels, decoders, modelThreads: threads,
    preprocess: preprocess ?? defaults.preprocess,
    labels: labels ?? (Array.isArray(defaults.labels) ? defaults.labels : defaults.labels),
  };
  let failed = 0;
  let done = 0;
  const total = files.length;
  const bar = new ProgressBar(total, !!process.stderr.isTTY && total >= 20);
  const reportError = (err: ImageError): void => {
    failed++;
    if (v.json) console.log(JSON.stringify({ image: err.image, error: err.message }));
    else console.error(`mnq classify: ${err.message}`);
  };
  argErrors.forEach(reportError);
  try {
    if (total) {
      const classifier = new Classifier(model, options);
      if (classifier.preprocessSource === 'default' && !defaults.preprocess) {
        console.error(`mnq classify: note: the model names no preprocessing; using '${classifier.pipeline.spec.name}' (set --preprocess to change)`);
      }
      for await (const r of classifier.classifyEach(files)) {
        done++;
        bar.clear();
        if (r.error) reportError(r.error);
        else if (v.json) console.log(JSON.stringify({ image: r.image, predictions: r.predictions }));
        else console.log(formatText(r.image, r.predictions as Prediction[]));
        bar.update(done, done === total);
      }
      bar.clear();
    }
  } finally {
    if (typeof model.release === 'function') await model.release();
    else if (typeof model.dispose === 'function') model.dispose();
  }
  if (failed) {
    const n = total + argErrors.length;
    console.error(`mnq classify: ${failed} of ${n} input${n === 1 ? '' : 's'} failed, ${total - (failed - argErrors.length)} classified`);
    return 1;
  }
  return 0;
}
