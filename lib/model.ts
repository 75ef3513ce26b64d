// The public runtime API: load an int8 ONNX model, run it.
//
//   const model = await load('mobilenet.qdq.onnx', { threads: 2 });
//   const logits = await model.run(nchw);                      // Float32Array, dequantized
//   const q = await model.run(nchw, [1, 3, 224, 224], { quantized: true }); // { data: Int8Array, scale, zeroPoint, shape }
//
// Loading parses and compiles the ONNX graph in TypeScript (lib/compiler) and
// hands the plan to the native addon (lib/native.ts), which runs it off the
// main thread on a persistent pool of `threads` threads.
import * as fs from 'fs';
import { CompiledModel, CompileOptions, UnsupportedModelError, compileModel } from './compiler';
import { OnnxFormatError, decodeModel, modelSource } from './onnx/proto';
import { readMetadata } from './onnx/metadata';
import { dequantizeTensor, quantizeLinear } from './numerics/quantization';
import { softmaxRowsFloat32 } from './numerics/softmax';
import { transposeImages } from './image/preprocess';
import { ExecutorName, IsaName, MAX_THREADS, NativeModel, loadNative } from './native';
import type { ClassifyOptions, Prediction } from './classify';
import type { ImageInput } from './image';

export type Dim = number | string;

export interface TensorInfo {
  name: string;
  /** ONNX shape, batch first (a string for a symbolic batch dimension). */
  shape: Dim[];
  type: 'float32';
}

export interface LoadOptions {
  /** Native threads that may compute for this model at once (default 1). */
  threads?: number;
  /** Kernel instruction set (default: MNQ_ISA if set, else the best this CPU supports). */
  isa?: IsaName;
  /**
   * How the runtime runs the model: 'fused' runs chains of ops (an inverted residual block: expand 1x1,
   * depthwise, project 1x1, residual add) band by band over rows, so the large expanded tensors are never
   * held whole; 'layers' runs each op over whole tensors. The same outputs, bit for bit. Default:
   * MNQ_EXECUTOR if set, else 'fused'.
   */
  executor?: ExecutorName;
  /**
   * Intermediate int8 tensors (ONNX names) to keep and make available through
   * runTensors(), or 'all' (slower: disables activation fusion). For debugging / check-ort.
   */
  keep?: string[] | 'all';
}

export interface RunOptions {
  /** Return the int8 output tensor (before the final DequantizeLinear) instead of floats. */
  quantized?: boolean;
}

/** An int8 tensor with its quantization: real = scale * (data - zeroPoint). */
export interface QuantizedTensor {
  data: Int8Array; // ONNX (NCHW) order
  scale: number;
  zeroPoint: number;
  shape: number[];
}

/** How a float input maps to the model's int8 input: q = clamp(round(x / scale) + zeroPoint). */
export interface InputQuantization {
  scale: number;
  zeroPoint: number;
}

/** What a loaded model holds in native memory, as the runtime reports it. */
export interface ModelMemory {
  /** Bytes of one image's activation arena region (a run holds min(batch, threads) regions, plus small classifier tensors per image). */
  arenaBytesPerImage: number;
  /** Bytes of the row windows of the fused groups, per computing thread (0 with the 'layers' executor). */
  windowBytesPerThread: number;
  /** The activations of one image on one thread: arenaBytesPerImage + windowBytesPerThread. */
  activationBytesPerImage: number;
  /** Bytes of the packed weights (and of the int16 activation tables). */
  weightBytes: number;
}

/** A loaded int8 model. Safe to run concurrently; call dispose() when done. */
export class Model {
  readonly inputs: ReadonlyArray<TensorInfo>;
  readonly outputs: ReadonlyArray<TensorInfo>;
  /** The quantization of the input (for runInt8 callers that quantize images themselves). */
  readonly inputQuantization: InputQuantization;
  readonly threads: number;
  readonly isa: IsaName;
  /** How the runtime runs it ('fused' or 'layers'; LoadOptions.executor) and how many fused groups it has. */
  readonly executor: ExecutorName;
  readonly fusedGroups: number;
  /** Native memory: activation arena per image, fused groups' windows and packed weights. */
  readonly memory: Readonly<ModelMemory>;
  /** The compiled plan and graph bindings, its ops without their weights (for tools; not a stable API). */
  readonly compiled: CompiledModel;
  /** The ONNX file's metadata_props (e.g. mnq.preprocess, mnq.labels written by `mnq calibrate`). */
  readonly metadata: Readonly<Record<string, string>>;
  private native: NativeModel | null;
  private readonly imageSize: number; // floats per image
  private readonly chw: [number, number, number];

  constructor(compiled: CompiledModel, native: NativeModel, metadata: Record<string, string> = {}) {
    this.compiled = compiled;
    this.metadata = Object.freeze({ ...metadata });
    this.native = native;
    const inp = compiled.input;
    this.chw = [inp.c, inp.h, inp.w];
    this.imageSize = inp.c * inp.h * inp.w;
    this.inputs = Object.freeze([Object.freeze({ name: inp.name, shape: inp.shape.slice(), type: 'float32' as const })]);
    this.outputs = Object.freeze(compiled.outputs.map((o) => Object.freeze({ name: o.name, shape: o.shape.slice(), type: 'float32' as const })));
    this.inputQuantization = Object.freeze({ scale: inp.scale, zeroPoint: inp.zeroPoint });
    this.threads = native.threads;
    this.isa = native.isa;
    this.executor = native.executor;
    this.fusedGroups = native.fusedGroups;
    this.memory = Object.freeze({
      arenaBytesPerImage: native.arenaBytesPerImage,
      windowBytesPerThread: native.windowBytesPerThread,
      activationBytesPerImage: native.arenaBytesPerImage + native.windowBytesPerThread,
      weightBytes: native.weightBytes,
    });
  }

  /**
   * Runs a float NCHW batch [N, C, H, W] (N >= 1; `shape` may be omitted, N is
   * then input.length / (C * H * W)); [N, H, W, C] for a model whose input is
   * NHWC (compiled.input.layout, e.g. a tf2onnx export of a Keras model; the native runtime quantizes
   * it as it is, with no transpose). Resolves to the first output,
   * dequantized (Float32Array, ONNX layout), or with { quantized: true } to the
   * int8 tensor before the final DequantizeLinear. Runs off the main thread.
   */
  run(input: Float32Array, shape?: number[] | null, options?: RunOptions & { quantized?: false }): Promise<Float32Array>;
  run(input: Float32Array, shape: number[] | null | undefined, options: RunOptions & { quantized: true }): Promise<QuantizedTensor>;
  run(input: Float32Array, shape?: number[] | null, options?: RunOptions): Promise<Float32Array | QuantizedTensor>;
  async run(input: Float32Array, shape?: number[] | null, options: RunOptions = {}): Promise<Float32Array | QuantizedTensor> {
    const batch = this.checkInput(input, shape, options);
    const outs = await this.nativeModel().run(input, batch);
    return this.finish(outs, batch, options);
  }

  /** Same as run(), on the calling thread (blocks it). */
  runSync(input: Float32Array, shape?: number[] | null, options?: RunOptions & { quantized?: false }): Float32Array;
  runSync(input: Float32Array, shape: number[] | null | undefined, options: RunOptions & { quantized: true }): QuantizedTensor;
  runSync(input: Float32Array, shape?: number[] | null, options: RunOptions = {}): Float32Array | QuantizedTensor {
    const batch = this.checkInput(input, shape, options);
    return this.finish(this.nativeModel().runSync(input, batch), batch, options);
  }

  /**
   * Runs an already quantized batch: int8 NHWC [batch][H][W][C], quantized with
   * inputQuantization (the image pipeline does this straight from pixels).
   * Resolves to the same Float32Array as run().
   */
  async runInt8(input: Int8Array, batch: number): Promise<Float32Array> {
    this.checkInt8(input, batch);
    const outs = await this.nativeModel().runInt8(input, batch);
    return this.finish(outs, batch, {}) as Float32Array;
  }

  /**
   * Runs a float batch and returns every returned int8 tensor by ONNX name:
   * the outputs' int8 tensors, then the tensors kept with LoadOptions.keep.
   */
  async runTensors(input: Float32Array, shape?: number[] | null): Promise<Map<string, QuantizedTensor>> {
    const batch = this.checkInput(input, shape, {});
    const outs = await this.nativeModel().run(input, batch);
    const plan = this.compiled.plan;
    const res = new Map<string, QuantizedTensor>();
    const named = [
      ...this.compiled.outputs.map((o) => ({ name: plan.tensors[o.tensor].name, tensor: o.tensor })),
      ...this.compiled.kept,
    ];
    named.forEach((k: { name: string; tensor: number; pieces?: number }, i) => {
      const t = plan.tensors[k.tensor];
      res.set(k.name, {
        data: nhwcToNchw(outs[i], batch, t.c, t.h, t.w, k.pieces),
        scale: t.scale,
        zeroPoint: t.zeroPoint,
        shape: t.h * t.w > 1 ? [batch, t.c, t.h, t.w] : [batch, t.c],
      });
    });
    return res;
  }

  /**
   * Classifies images (file paths, encoded image bytes or raw pixels): top-k
   * { label, index, probability } per image, in input order. Preprocessing and
   * labels come from the model's metadata unless given. See lib/classify.ts.
   */
  classify(images: ImageInput | ImageInput[], options: ClassifyOptions = {}): Promise<Prediction[][]> {
    // loaded on first use: sharp is only needed by programs that classify images
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { classify } = require('./classify') as typeof import('./classify');
    return classify(this, images, options);
  }

  /** Releases the native model. Runs already started finish; later calls throw. */
  dispose(): void {
    if (this.native) {
      this.native.dispose();
      this.native = null;
    }
  }

  get disposed(): boolean {
    return this.native === null;
  }

  // ------------------------------------------------------------ internals
  private nativeModel(): NativeModel {
    if (!this.native) throw new Error('mnq: this model was disposed; load it again to run it');
    return this.native;
  }

  private checkInput(input: Float32Array, shape: number[] | null | undefined, options: RunOptions): number {
    const [c, h, w] = this.chw;
    const nhwc = this.compiled.input.layout === 'nhwc';
    const dims = nhwc ? [h, w, c] : [c, h, w];
    const layout = nhwc ? 'NHWC' : 'NCHW';
    if (!(input instanceof Float32Array)) {
      throw new TypeError(`mnq: input must be a Float32Array of ${layout} floats [N, ${dims.join(', ')}], got ${describe(input)}`);
    }
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError('mnq: options must be an object such as { quantized: true }');
    }
    let batch: number;
    if (shape === undefined || shape === null) {
      if (input.length === 0 || input.length % this.imageSize !== 0) {
        throw new RangeError(`mnq: input has ${input.length} floats; expected a positive multiple of ${dims.join('x')} = ${this.imageSize} (${layout} images)`);
      }
      batch = input.length / this.imageSize;
    } else {
      if (!Array.isArray(shape)) throw new TypeError(`mnq: shape must be an array [N, ${dims.join(', ')}], got ${describe(shape)}`);
      if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
        throw new RangeError(`mnq: shape must be [N, ${dims.join(', ')}] with N >= 1, got [${shape.join(', ')}]`);
      }
      if (shape[1] !== dims[0] || shape[2] !== dims[1] || shape[3] !== dims[2]) {
        throw new RangeError(`mnq: shape [${shape.join(', ')}] does not match the model input [N, ${dims.join(', ')}]`);
      }
      batch = shape[0];
      if (input.length !== batch * this.imageSize) {
        throw new RangeError(`mnq: input has ${input.length} floats but shape [${shape.join(', ')}] needs ${batch * this.imageSize}`);
      }
    }
    return batch;
  }

  private checkInt8(input: Int8Array, batch: number): void {
    const [c, h, w] = this.chw;
    if (!(input instanceof Int8Array)) throw new TypeError(`mnq: runInt8 input must be an Int8Array of NHWC [N, ${h}, ${w}, ${c}], got ${describe(input)}`);
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`mnq: batch must be an integer >= 1, got ${batch}`);
    if (input.length !== batch * this.imageSize) {
      throw new RangeError(`mnq: runInt8 input has ${input.length} values; batch ${batch} of [${h}, ${w}, ${c}] needs ${batch * this.imageSize}`);
    }
  }

  private finish(outs: Int8Array[], batch: number, options: RunOptions): Float32Array | QuantizedTensor {
    const o = this.compiled.outputs[0];
    const t = this.compiled.plan.tensors[o.tensor];
    const q = nhwcToNchw(outs[0], batch, o.c, o.h, o.w);
    const sq = o.softmaxQuantization;
    if (options.quantized && !sq) {
      const shape = [batch, ...(o.shape.length === 4 ? [o.c, o.h, o.w] : o.shape.length === 3 ? [o.c, o.w] : [o.c])];
      return { data: q, scale: t.scale, zeroPoint: t.zeroPoint, shape };
    }
    const out = dequantizeTensor(q, t.scale, t.zeroPoint);
    if (o.softmax) softmaxRowsFloat32(out, batch);
    if (!sq) return out;
    // DQ -> Softmax -> Q (-> DQ): ONNX Runtime runs this group in float32, unfused; so does mnq.
    const p = new Int8Array(out.length);
    for (let i = 0; i < out.length; i++) p[i] = quantizeLinear(out[i], sq.scale, sq.zeroPoint);
    if (options.quantized) return { data: p, scale: sq.scale, zeroPoint: sq.zeroPoint, shape: [batch, o.c] };
    return dequantizeTensor(p, sq.scale, sq.zeroPoint);
  }

}

/** NHWC → NCHW; `pieces` m: the NHWC data is piece-major (channel c·m + j stored at j·(C/m) + c). */
function nhwcToNchw(x: Int8Array, batch: number, c: number, h: number, w: number, pieces = 1): Int8Array {
  if (h * w === 1 && pieces === 1) return x;
  return transposeImages(x, batch, c, h, w, true, (ch) => (ch % pieces) * (c / pieces) + Math.floor(ch / pieces));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an Array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as { length?: number }).length ?? v.byteLength}`;
  return typeof v === 'object' ? `a ${(v as object).constructor?.name ?? 'object'}` : `a ${typeof v}`;
}

/**
 * Loads an int8 ONNX model (file path or bytes): parses and compiles it, then
 * creates the native model. Rejects with an OnnxFormatError when the file is not valid ONNX (or cannot be read)
 * and an UnsupportedModelError naming the node, its op type and what is missing when mnq cannot run it; both
 * name the file (or "model (N bytes)"). Bad arguments: TypeError / RangeError.
 */
export async function load(pathOrBytes: string | Uint8Array, options: LoadOptions = {}): Promise<Model> {
  if (options === null || typeof options !== 'object') throw new TypeError('mnq: load options must be an object such as { threads: 2 }');
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new RangeError(`mnq: threads must be an integer from 1 to ${MAX_THREADS}, got ${options.threads}`);
  }
  if (options.isa !== undefined) checkIsa(options.isa);
  let bytes: Uint8Array;
  if (typeof pathOrBytes === 'string') {
    try {
      bytes = await fs.promises.readFile(pathOrBytes);
    } catch (e) {
      throw new OnnxFormatError(`cannot read model file '${pathOrBytes}': ${(e as Error).message}`);
    }
  } else if (pathOrBytes instanceof Uint8Array) {
    bytes = pathOrBytes;
  } else {
    throw new TypeError(`mnq: load() takes a file path (string) or ONNX bytes (Uint8Array), got ${describe(pathOrBytes)}`);
  }
  const source = modelSource(pathOrBytes);
  const compileOptions: CompileOptions = { keep: options.keep, source };
  const onnxModel = decodeModel(bytes, source);
  const metadata = readMetadata(onnxModel);
  const compiled = compileModel(onnxModel, compileOptions);
  let native: NativeModel;
  try {
    native = await loadNative().createModel(compiled.plan, {
      threads, ...(options.isa ? { isa: options.isa } : {}), ...(options.executor ? { executor: options.executor } : {}),
    });
  } catch (e) {
    throw planRefused(e, compiled, source);
  }
  // The native model packed its own copy of the weights: the Model keeps the plan without them,
  // and the compiled plan, not modified, goes with its weights when this function returns.
  return new Model(withoutWeights(compiled), native, metadata);
}

const ISAS: readonly IsaName[] = ['scalar', 'avx2', 'avxvnni', 'avx512vnni', 'neon', 'neondot'];

/** LoadOptions.isa: a TypeError for a name that is no ISA, a RangeError for one this build or CPU cannot run. */
function checkIsa(isa: unknown): void {
  if (!ISAS.includes(isa as IsaName)) throw new TypeError(`mnq: isa must be one of ${ISAS.join(', ')}; got ${typeof isa === 'string' ? `'${isa}'` : describe(isa)}`);
  const supported = loadNative().supportedIsas();
  if (!supported.includes(isa as IsaName)) throw new RangeError(`mnq: isa '${isa}' cannot run on this CPU or build (supported: ${supported.join(', ')})`);
}

/**
 * The runtime refused a compiled plan (its validator is the last line of defence behind the compiler's checks):
 * an UnsupportedModelError naming the model and the node of the plan op, with the runtime's error as its cause.
 */
function planRefused(e: unknown, compiled: CompiledModel, source: string): UnsupportedModelError {
  const err = e instanceof Error ? e : new Error(String(e));
  const index = /plan op (\d+)/.exec(err.message);
  const op = index ? compiled.plan.ops[Number(index[1])] : undefined;
  const where = op ? `node '${op.name}'` : 'model';
  return new UnsupportedModelError(`${source}: ${where}: mnq's runtime cannot run the compiled plan (${err.message})`, { ...(op ? { node: op.name } : {}), cause: err });
}

/** A compiled model whose ops have no weights (a copy: `compiled` is not modified). */
function withoutWeights(compiled: CompiledModel): CompiledModel {
  const none = new Int8Array(0);
  return { ...compiled, plan: { ...compiled.plan, ops: compiled.plan.ops.map((op) => ({ ...op, weights: none })) } };
}
