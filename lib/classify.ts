// Image classification on top of a loaded model: images (paths, encoded bytes, raw pixels) → top-k
// { label, index, probability } (softmax of the output), in batches, decoding the next batch while the
// current one runs, with sharp's threads and the model's threads sized together.
import {
  describeInput, ImageError, ImageInput, ImagePipeline, InputQuantization, Pixels, pixelsToFloatNCHW, pixelsToNHWC,
} from './image';
import { acquireSharp, decodeConcurrency, releaseSharp } from './image/decode-threads';
import { fileMetadata, METADATA_KEYS } from './onnx/metadata';
import { parsePreprocess, PreprocessSpecInput } from './preprocess-spec';
import { checkLabels, imagenetLabelsFor, Labels, loadLabels } from './labels';
import { isDistribution, softmax, topK } from './numerics/softmax';

/**
 * What classify needs from a model: mnq's Model satisfies it (float `run`, and `runInt8` + `inputQuantization`
 * for int8 models), and so does `loadOrtModel` below (ONNX Runtime, float input).
 */
export interface ClassifierModel {
  readonly inputs: ReadonlyArray<{ name: string; shape: ReadonlyArray<number | string>; type?: string }>;
  readonly outputs: ReadonlyArray<{ name: string; shape: ReadonlyArray<number | string>; type?: string }>;
  /** float input (NCHW, or NHWC when the model's input is channels-last) → first output, dequantized */
  run(input: Float32Array, shape?: number[]): Promise<Float32Array | unknown>;
  /** int8 models: real = scale * (q - zeroPoint) of the model input */
  readonly inputQuantization?: InputQuantization | null;
  /** int8 models: int8 NHWC input (already quantized) → the same output as run() */
  runInt8?(input: Int8Array, batch: number): Promise<Float32Array | unknown>;
  /** ONNX metadata_props of the model file */
  readonly metadata?: Readonly<Record<string, string>>;
  /** threads of the model's own pool, when known (used to size sharp's) */
  readonly threads?: number;
}

/** One of the top-k classes of an image. */
export interface Prediction {
  /** the class name (for ImageNet models, the full WordNet name, e.g. 'Egyptian cat') */
  label: string;
  /** the model's output index (1001-class models: 0 is 'background', ImageNet class k is k + 1) */
  index: number;
  /** softmax probability, 0..1 */
  probability: number;
}

export interface ClassifyOptions {
  /** how many classes per image (default 5) */
  topK?: number;
  /** images per model run (default 32; 1 for models with a fixed batch of 1) */
  batchSize?: number;
  /** preprocessing: name, JSON or spec; default from the model's metadata, else by its class count */
  preprocess?: string | PreprocessSpecInput;
  /** labels: a label set name ('imagenet-1001', 'imagenet-1000'), a file, or the names */
  labels?: string | string[] | Labels;
  /** pixel limit per image (default 268402689 like sharp; false: none) */
  limitInputPixels?: number | false;
  /** images decoded at the same time (default: sized from the CPU count and the model's threads) */
  decoders?: number;
  /** threads the model runs on, for sizing the decoding (default model.threads, else all cores) */
  modelThreads?: number;
  /** use the model's int8 input path when it has one (default true) */
  int8?: boolean;
  /** 'auto' (default): softmax unless the output already is a probability distribution */
  softmax?: boolean | 'auto';
}

/** The result for one image: its predictions, or why it failed. */
export interface ClassifyOutcome {
  /** position of the image in the input list */
  position: number;
  /** the file path, or a description of a buffer */
  image: string;
  predictions?: Prediction[];
  error?: ImageError;
}

/** Where the preprocessing came from, for reporting. */
export type Source = 'option' | 'metadata' | 'default';

function defaultPreprocess(classes: number | undefined): string {
  // TF-trained ImageNet models have 1001 classes (background first); 1000-class ones are mostly torchvision-style
  return classes === 1001 ? 'tf' : 'torch';
}

function staticDim(d: number | string | undefined): number | undefined {
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/** A model with its preprocessing, labels and input path resolved: classify images with it. */
export class Classifier {
  readonly model: ClassifierModel;
  readonly pipeline: ImagePipeline;
  /** where the preprocessing came from */
  readonly preprocessSource: Source;
  /** true when images go to the model as int8 through the lookup table */
  readonly int8: boolean;
  /** fixed batch size of the model's input, if any */
  readonly fixedBatch?: number;
  private readonly layout: 'nchw' | 'nhwc';
  private readonly opts: ClassifyOptions;
  private labelsCache?: Labels;

  constructor(model: ClassifierModel, options: ClassifyOptions = {}) {
    if (!model || !Array.isArray(model.inputs) || !model.inputs.length || typeof model.run !== 'function') {
      throw new TypeError('classify: model must be a loaded model (with inputs, outputs and run())');
    }
    this.model = model;
    this.opts = options;
    const shape = model.inputs[0].shape;
    if (shape.length !== 4) throw new Error(`classify: model input '${model.inputs[0].name}' has shape [${shape.join(', ')}]; an image model needs 4 dimensions`);
    this.layout = staticDim(shape[1]) === 3 ? 'nchw' : staticDim(shape[3]) === 3 ? 'nhwc' : 'nchw';
    const [h, w] = this.layout === 'nchw' ? [shape[2], shape[3]] : [shape[1], shape[2]];
    this.fixedBatch = staticDim(shape[0]);
    const classes = staticDim(model.outputs?.[0]?.shape?.[model.outputs[0].shape.length - 1]);
    const meta = model.metadata ?? {};
    let pre: string | PreprocessSpecInput;
    if (options.preprocess !== undefined) {
      pre = options.preprocess;
      this.preprocessSource = 'option';
    } else if (meta[METADATA_KEYS.preprocess]) {
      pre = meta[METADATA_KEYS.preprocess];
      this.preprocessSource = 'metadata';
    } else {
      pre = defaultPreprocess(classes);
      this.preprocessSource = 'default';
    }
    const spec = parsePreprocess(pre);
    const q = model.inputQuantization;
    this.int8 = options.int8 !== false && !!q && typeof model.runInt8 === 'function';
    this.pipeline = new ImagePipeline({
      preprocess: spec, height: staticDim(h), width: staticDim(w),
      quantization: this.int8 ? (q as InputQuantization) : undefined, limitInputPixels: options.limitInputPixels,
    });
    if (classes !== undefined) this.labelsCache = this.resolveLabels(classes);
  }

  /** The labels, once the number of classes is known (from the output shape or the first run). */
  get labels(): Labels | undefined {
    return this.labelsCache;
  }

  private resolveLabels(classes: number): Labels {
    const given = this.opts.labels ?? this.model.metadata?.[METADATA_KEYS.labels];
    let labels: Labels | undefined;
    if (Array.isArray(given)) labels = { source: 'option', names: given.map(String) };
    else if (typeof given === 'string') labels = loadLabels(given);
    else if (given && typeof given === 'object') labels = given as Labels;
    else labels = imagenetLabelsFor(classes) ?? { source: 'index', names: Array.from({ length: classes }, (_, i) => `class ${i}`) };
    checkLabels(labels, classes);
    return labels;
  }

  private batchSize(): number {
    if (this.fixedBatch !== undefined) return this.fixedBatch;
    const b = this.opts.batchSize ?? 32;
    if (!Number.isInteger(b) || b < 1) throw new RangeError(`batch size must be a positive integer, got ${b}`);
    return b;
  }

  /** Classifies images; rejects with the ImageError of the first image that fails. */
  async classify(images: ImageInput | ImageInput[], options: { topK?: number } = {}): Promise<Prediction[][]> {
    const list = Array.isArray(images) ? images : [images];
    const out: Prediction[][] = new Array(list.length);
    for await (const r of this.classifyEach(list, options)) {
      if (r.error) throw r.error;
      out[r.position] = r.predictions as Prediction[];
    }
    return out;
  }

  /**
   * Classifies images in order, one outcome per image (a failed image gives its ImageError and the others
   * go on). Decoding runs ahead of inference by one batch.
   */
  async *classifyEach(images: ImageInput | Iterable<ImageInput> | AsyncIterable<ImageInput>, options: { topK?: number } = {}): AsyncGenerator<ClassifyOutcome> {
    const k = options.topK ?? this.opts.topK ?? 5;
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`topK must be a positive integer, got ${k}`);
    const batch = this.batchSize();
    const fixed = this.opts.decoders;
    if (fixed !== undefined && (!Number.isInteger(fixed) || fixed < 1)) throw new RangeError(`decoders must be a positive integer, got ${fixed}`);
    const limits = decodeConcurrency(this.opts.modelThreads ?? this.model.threads, fixed);

    type Pending = { position: number; name: string; result: Promise<Pixels | ImageError> };
    // one image given on its own (a path, bytes, raw pixels) rather than a list of them
    if (typeof images === 'string' || images instanceof Uint8Array || images instanceof ArrayBuffer || (images && 'data' in Object(images))) {
      images = [images as unknown as ImageInput];
    }
    const it = (Symbol.asyncIterator in Object(images)
      ? (images as AsyncIterable<ImageInput>)[Symbol.asyncIterator]()
      : (images as Iterable<ImageInput>)[Symbol.iterator]()) as Iterator<ImageInput> | AsyncIterator<ImageInput>;
    let position = 0;
    let exhausted = false;
    // a bounded decode pool, jobs started in input order: `limits.busy` sharp jobs at a time while the model
    // runs, `limits.idle` while it does not
    let running = 0;
    let modelBusy = false;
    const waiting: (() => void)[] = [];
    const limit = (): number => (modelBusy ? limits.busy : limits.idle);
    const pump = (): void => {
      while (waiting.length && running < limit()) {
        running++;
        (waiting.shift() as () => void)();
      }
    };
    const slot = (): Promise<void> => new Promise<void>((resolve) => {
      waiting.push(resolve);
      pump();
    });
    const done = (): void => {
      running--;
      pump();
    };
    const runModel = async <T>(f: () => Promise<T>): Promise<T> => {
      modelBusy = true;
      try {
        return await f();
      } finally {
        modelBusy = false;
        pump();
      }
    };
    const start = (input: ImageInput, pos: number): Pending => {
      const name = describeInput(input, typeof input === 'string' ? undefined : pos);
      const result = (async () => {
        await slot();
        try {
          return await this.pipeline.pixels(input, name);
        } catch (e) {
          return e instanceof ImageError ? e : new ImageError(name, (e as Error)?.message ?? String(e));
        } finally {
          done();
        }
      })();
      return { position: pos, name, result };
    };
    const nextBatch = async (): Promise<Pending[]> => {
      const b: Pending[] = [];
      while (b.length < batch && !exhausted) {
        const r = await it.next();
        if (r.done) {
          exhausted = true;
          break;
        }
        b.push(start(r.value, position++));
      }
      return b;
    };

    const hw = this.pipeline.width * this.pipeline.height;
    acquireSharp();
    try {
      let current = await nextBatch();
      while (current.length) {
        const decoded = await Promise.all(current.map((p) => p.result));
        // queue the next batch's decodes before running this one, so they overlap
        const upcoming = nextBatch();
        upcoming.catch(() => undefined); // (a failing input iterator is reported at the await below, not as unhandled)
        const ok: number[] = [];
        decoded.forEach((d, i) => { if (!(d instanceof ImageError)) ok.push(i); });
        let logits: Float32Array | undefined;
        if (ok.length) {
          const n = this.fixedBatch ?? ok.length;
          if (this.int8) {
            const x = new Int8Array(n * 3 * hw);
            ok.forEach((i, slotIdx) => this.pipeline.writeInt8(decoded[i] as Pixels, x, slotIdx));
            logits = asFloat(await runModel(() => (this.model.runInt8 as NonNullable<ClassifierModel['runInt8']>)(x, n)), 'runInt8');
          } else {
            const x = new Float32Array(n * 3 * hw);
            if (this.layout === 'nchw') {
              ok.forEach((i, slotIdx) => pixelsToFloatNCHW((decoded[i] as Pixels).data, this.pipeline.floatTable, x, slotIdx));
            } else {
              ok.forEach((i, slotIdx) => pixelsToNHWC((decoded[i] as Pixels).data, this.pipeline.floatTable, x, slotIdx));
            }
            const shape = this.layout === 'nchw' ? [n, 3, this.pipeline.height, this.pipeline.width] : [n, this.pipeline.height, this.pipeline.width, 3];
            logits = asFloat(await runModel(() => this.model.run(x, shape)), 'run');
          }
          if (logits.length % n !== 0) throw new Error(`classify: model output has ${logits.length} values, not a multiple of the batch ${n}`);
        }
        const n = this.fixedBatch ?? ok.length;
        const classes = logits ? logits.length / n : 0;
        if (logits && !this.labelsCache) this.labelsCache = this.resolveLabels(classes);
        let okIndex = 0;
        for (let i = 0; i < current.length; i++) {
          const d = decoded[i];
          if (d instanceof ImageError) {
            yield { position: current[i].position, image: current[i].name, error: d };
            continue;
          }
          const off = okIndex++ * classes;
          yield { position: current[i].position, image: current[i].name, predictions: this.predictions(logits as Float32Array, off, classes, k) };
        }
        current = await upcoming;
      }
    } finally {
      releaseSharp();
      if (!exhausted && typeof it.return === 'function') await it.return();
    }
  }

  private predictions(out: Float32Array, off: number, classes: number, k: number): Prediction[] {
    const mode = this.opts.softmax ?? 'auto';
    const p = mode === false || (mode === 'auto' && isDistribution(out, off, classes))
      ? Float64Array.from(out.subarray(off, off + classes))
      : softmax(out, off, classes);
    const names = (this.labelsCache as Labels).names;
    return topK(p, Math.min(k, classes)).map((i) => ({ label: names[i], index: i, probability: p[i] }));
  }
}

function asFloat(v: unknown, what: string): Float32Array {
  if (v instanceof Float32Array) return v;
  const o = v as { data?: unknown } | undefined;
  if (o && o.data instanceof Float32Array) return o.data;
  throw new Error(`classify: model.${what}() did not return a Float32Array`);
}

/**
 * Classifies images with a loaded model: top-k { label, index, probability } per image, in input order.
 * Rejects with an ImageError (naming the image) if any image cannot be decoded; use
 * `new Classifier(model).classifyEach(...)` to get per-image errors and go on.
 */
export function classify(
  model: ClassifierModel, images: ImageInput | ImageInput[], options: ClassifyOptions = {},
): Promise<Prediction[][]> {
  try {
    return new Classifier(model, options).classify(images, options);
  } catch (e) {
    return Promise.reject(e);
  }
}

// ---------------------------------------------------------------------------------------------------
// ONNX Runtime as a ClassifierModel (float input): the reference for tests and `bench-classify --vs-ort`.

/** Loads an ONNX file into onnxruntime-node with `threads` intra-op threads, as a ClassifierModel. */
export async function loadOrtModel(pathOrBytes: string | Uint8Array, options: { threads?: number } = {}): Promise<ClassifierModel & { release(): Promise<void> }> {
  // loaded on first use: onnxruntime-node is only needed by programs that compare with it
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { createSession, ort } = require('./ort/session') as typeof import('./ort/session');
  const session = await createSession(pathOrBytes, 'classifier', { threads: options.threads });
  const { Tensor } = ort();
  const meta = (session as unknown as { inputMetadata?: { name: string; shape?: (number | string)[] }[]; outputMetadata?: { name: string; shape?: (number | string)[] }[] });
  const dimsOf = (list: { name: string; shape?: (number | string)[] }[] | undefined, name: string): (number | string)[] => {
    const m = list?.find((x) => x.name === name);
    return (m?.shape ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : String(d)));
  };
  const inputs = session.inputNames.map((name) => ({ name, shape: dimsOf(meta.inputMetadata, name), type: 'float32' }));
  const outputs = session.outputNames.map((name) => ({ name, shape: dimsOf(meta.outputMetadata, name), type: 'float32' }));
  return {
    inputs,
    outputs,
    metadata: fileMetadata(pathOrBytes),
    threads: options.threads,
    async run(input: Float32Array, shape?: number[]): Promise<Float32Array> {
      const s = shape ?? inputs[0].shape.map((d) => (typeof d === 'number' ? d : 1));
      const feeds = { [inputs[0].name]: new Tensor('float32', input, s) };
      const res = await session.run(feeds);
      return res[outputs[0].name].data as Float32Array;
    },
    release: () => session.release(),
  };
}
