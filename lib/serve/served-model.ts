// One model of `mnq serve`: the loaded model, its image pipeline and labels (a Classifier's, so preprocessing and
// labels resolve exactly as in `mnq classify`), its dynamic batcher, and how a batch is computed: images go to the
// model as one int8 NHWC tensor (model.runInt8, the path `classify` takes), infer tensors as one float tensor
// (model.run); one allocation per batch, each request writing its own slots.
import { Classifier } from '../index';
import { isDistribution, softmax, topK } from '../numerics/softmax';
import type { ClassifyOptions, ImagePipeline, InputQuantization, Prediction, TensorInfo } from '../index';
import { Batcher, BatchJob, Reservation, Submitted } from './batcher';
import { DecodeSlots } from './decode-slots';
import { ServerMetrics } from './metrics';

/** What the server needs of a model: mnq's Model has it all. */
export interface ServableModel {
  readonly inputs: ReadonlyArray<TensorInfo>;
  readonly outputs: ReadonlyArray<TensorInfo>;
  readonly inputQuantization?: InputQuantization | null;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly threads?: number;
  readonly isa?: string;
  /** float input [N, ...input dims] → the first output, N rows */
  run(input: Float32Array, shape?: number[] | null): Promise<Float32Array>;
  /** int8 NHWC input, quantized with inputQuantization → the same as run() */
  runInt8(input: Int8Array, batch: number): Promise<Float32Array>;
  dispose?(): void;
}

/** Decoded pixels, as the image pipeline gives them. */
export type Pixels = Awaited<ReturnType<ImagePipeline['pixels']>>;

/** A batch item: one decoded image, or the items of one infer request. */
export type ModelJob =
  | { kind: 'image'; size: 1; pixels: Pixels }
  | { kind: 'tensor'; size: number; write(into: Float32Array, offset: number): void };

export interface ServedModelOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  maxInFlight: number;
  preprocess?: ClassifyOptions['preprocess'];
  labels?: ClassifyOptions['labels'];
  maxPixels?: number | false;
}

function staticDims(shape: ReadonlyArray<number | string>): number[] | null {
  return shape.every((d) => typeof d === 'number' && d > 0) ? (shape as number[]) : null;
}

export class ServedModel {
  readonly inputName: string;
  /** one item's input dims (the input shape without the batch dimension) */
  readonly itemDims: number[];
  readonly itemLength: number;
  /** one item's output dims, and their product */
  readonly outputDims: number[];
  readonly outputLength: number;
  /** the model's own batch size when its input has a fixed one (runs are padded to it) */
  readonly fixedBatch?: number;
  readonly maxBatch: number;
  readonly batcher: Batcher<ModelJob, Float32Array>;
  /** the image pipeline and labels, or why the model takes no images */
  private readonly classifier: Classifier | null;
  readonly noImagesReason?: string;

  constructor(
    readonly name: string,
    readonly model: ServableModel,
    /** whether the server loaded the model (and disposes it at close) */
    readonly owned: boolean,
    options: ServedModelOptions,
    private readonly slots: DecodeSlots,
    private readonly metrics: ServerMetrics,
  ) {
    const input = model.inputs[0];
    const output = model.outputs[0];
    if (!input || !output) throw new Error(`model '${name}' needs an input and an output`);
    const itemDims = staticDims(input.shape.slice(1));
    const outputDims = staticDims(output.shape.slice(1));
    if (!itemDims || !outputDims) {
      throw new Error(`model '${name}': the server needs fixed dimensions after the batch; input [${input.shape.join(', ')}], output [${output.shape.join(', ')}]`);
    }
    this.inputName = input.name;
    this.itemDims = itemDims;
    this.itemLength = itemDims.reduce((a, b) => a * b, 1);
    this.outputDims = outputDims;
    this.outputLength = outputDims.reduce((a, b) => a * b, 1);
    if (typeof input.shape[0] === 'number') this.fixedBatch = input.shape[0];
    this.maxBatch = Math.min(options.maxBatch, this.fixedBatch ?? Infinity);

    let classifier: Classifier | null = null;
    try {
      classifier = new Classifier(model, { preprocess: options.preprocess, labels: options.labels, limitInputPixels: options.maxPixels });
      if (!classifier.int8) throw new Error('it has no int8 input (runInt8 and inputQuantization)');
      if (!classifier.labels) throw new Error('its number of classes is unknown');
      const { width, height } = classifier.pipeline;
      if (width * height * 3 !== this.itemLength) throw new Error(`its input [${input.shape.join(', ')}] is not a ${height}x${width} RGB image`);
    } catch (e) {
      this.noImagesReason = (e as Error).message;
      classifier = null;
    }
    this.classifier = classifier;

    this.batcher = new Batcher<ModelJob, Float32Array>({
      maxBatch: this.maxBatch, maxDelayMs: options.maxDelayMs, maxQueue: options.maxQueue, maxInFlight: options.maxInFlight,
      execute: (jobs, size) => this.execute(jobs, size),
    });
  }

  /** The preprocessing and labels images get, or null when the model takes no images. */
  get imageInfo(): { preprocess: string; labels: string; width: number; height: number } | null {
    const c = this.classifier;
    if (!c) return null;
    return { preprocess: c.pipeline.spec.name, labels: c.labels?.source ?? 'none', width: c.pipeline.width, height: c.pipeline.height };
  }

  /** Images admitted and not yet computing. */
  get queueDepth(): number {
    return this.batcher.depth;
  }

  /** Room in the queue for `n` images, or null (429). */
  reserve(n: number): Reservation | null {
    return this.batcher.reserve(n);
  }

  release(r: Reservation): void {
    this.batcher.release(r);
  }

  /**
   * Decodes an image to the model's input size, in a decode slot. `stop` is asked once the slot is free: a
   * reason (the request timed out, its client went away) throws it instead of decoding. Rejects with an
   * ImageError for a bad image.
   */
  decode(bytes: Uint8Array, name: string, stop: () => Error | null): Promise<Pixels> {
    const c = this.classifier;
    if (!c) return Promise.reject(new Error(`model '${this.name}' takes no images: ${this.noImagesReason}`));
    return this.slots.run(() => {
      const why = stop();
      return why ? Promise.reject(why) : c.pipeline.pixels(bytes, name);
    });
  }

  /** Queues a decoded image; resolves to its output row. */
  submitImage(r: Reservation, pixels: Pixels, deadline: number): Submitted<Float32Array> {
    return this.batcher.submit(r, { kind: 'image', size: 1, pixels }, deadline);
  }

  /** Queues `size` items of float input; resolves to their output rows. */
  submitTensor(r: Reservation, size: number, write: (into: Float32Array, offset: number) => void, deadline: number): Submitted<Float32Array> {
    return this.batcher.submit(r, { kind: 'tensor', size, write }, deadline);
  }

  /** Top-k { label, index, probability } of one output row: softmax unless it already is a distribution, as classify does. */
  predictions(row: Float32Array, k: number): Prediction[] {
    const names = (this.classifier?.labels?.names) ?? [];
    const p = isDistribution(row) ? Float64Array.from(row) : softmax(row);
    return topK(p, Math.min(k, row.length)).map((i) => ({ label: names[i] ?? `class ${i}`, index: i, probability: p[i] }));
  }

  /** Open Inference Protocol model metadata. */
  metadata(): Record<string, unknown> {
    const dims = (shape: ReadonlyArray<number | string>): number[] => shape.map((d) => (typeof d === 'number' ? d : -1));
    const images = this.imageInfo;
    return {
      name: this.name,
      platform: 'mnq_int8_onnx',
      inputs: this.model.inputs.map((t) => ({ name: t.name, datatype: 'FP32', shape: dims(t.shape) })),
      outputs: this.model.outputs.slice(0, 1).map((t) => ({ name: t.name, datatype: 'FP32', shape: dims(t.shape) })),
      parameters: {
        max_batch_size: this.maxBatch,
        threads: this.model.threads,
        isa: this.model.isa,
        ...(images ? { preprocess: images.preprocess, labels: images.labels } : { images: `not accepted: ${this.noImagesReason}` }),
      },
    };
  }

  /** Computes one batch: one input tensor, one model run, each job's rows of the output. */
  private async execute(jobs: ModelJob[], size: number): Promise<Float32Array[]> {
    const n = this.fixedBatch ?? size;
    const t0 = performance.now();
    this.slots.computeStarted();
    let out: Float32Array;
    try {
      if (jobs[0].kind === 'image') {
        const pipeline = (this.classifier as Classifier).pipeline;
        const x = new Int8Array(n * this.itemLength);
        jobs.forEach((j, i) => pipeline.writeInt8((j as { pixels: Pixels }).pixels, x, i));
        out = await this.model.runInt8(x, n);
      } else {
        const x = new Float32Array(n * this.itemLength);
        let at = 0;
        for (const j of jobs) {
          (j as { write(into: Float32Array, offset: number): void }).write(x, at * this.itemLength);
          at += j.size;
        }
        out = await this.model.run(x, [n, ...this.itemDims]);
      }
    } finally {
      this.slots.computeFinished();
    }
    this.metrics.batchDone(this.name, size, (performance.now() - t0) / 1000);
    if (!(out instanceof Float32Array) || out.length !== n * this.outputLength) {
      throw new Error(`model '${this.name}' returned ${out?.length} values for a batch of ${n}, expected ${n * this.outputLength}`);
    }
    const rows: Float32Array[] = [];
    let at = 0;
    for (const j of jobs) {
      rows.push(out.subarray(at * this.outputLength, (at + j.size) * this.outputLength));
      at += j.size;
    }
    return rows;
  }
}
