// The image pipeline: images → model input tensors (float NCHW / NHWC, or int8 NHWC straight from the
// 8-bit pixels through a per-channel lookup table).
import { decodeToPixels, DecodeOptions, ImageError, ImageInput, Pixels, describeInput } from './decode';
import { floatTable, int8Table, InputQuantization, pixelsToFloatNCHW, pixelsToNHWC } from './preprocess';
import { parsePreprocess, PreprocessSpec, PreprocessSpecInput } from '../preprocess-spec';

export * from './preprocess';
export * from './decode';

export interface ImagePipelineOptions {
  /** preprocessing: a name ('tf', 'torch', 'raw', 'paddle'), a JSON string or a spec */
  preprocess: string | PreprocessSpecInput;
  /** model input size; spec.size wins when both are given */
  width?: number;
  height?: number;
  /** the int8 model's input quantization; needed for int8 output */
  quantization?: InputQuantization;
  /** pixel limit per image (default 268402689 like sharp; false: none) */
  limitInputPixels?: number | false;
}

/** Per-image result of a batch conversion: the tensor has a slot for every input; failed slots are zero. */
export interface BatchResult<T> {
  data: T;
  /** [N, 3, H, W] for float NCHW, [N, H, W, 3] for int8 NHWC */
  shape: number[];
  /** errors[i] is the ImageError of input i, or undefined when it decoded */
  errors: (ImageError | undefined)[];
}

/** Turns images into model inputs for one preprocessing, model size and (optionally) input quantization. */
export class ImagePipeline {
  readonly spec: PreprocessSpec;
  readonly width: number;
  readonly height: number;
  readonly quantization?: InputQuantization;
  /** 3 × 256 float32: the float input value of each 8-bit value of R, G, B */
  readonly floatTable: Float32Array;
  /** 3 × 256 int8: QuantizeLinear of floatTable (present when quantization is) */
  readonly int8Table?: Int8Array;
  private readonly decodeOptions: DecodeOptions;

  constructor(options: ImagePipelineOptions) {
    this.spec = parsePreprocess(options.preprocess);
    const h = this.spec.size?.[0] ?? options.height;
    const w = this.spec.size?.[1] ?? options.width;
    if (!Number.isInteger(h) || !Number.isInteger(w) || (h as number) < 1 || (w as number) < 1) {
      throw new RangeError(`image pipeline needs a positive integer input size, got ${w}x${h} (give 'size' in the preprocessing spec for models with a dynamic input size)`);
    }
    this.width = w as number;
    this.height = h as number;
    this.floatTable = floatTable(this.spec);
    if (options.quantization) {
      this.quantization = { ...options.quantization };
      this.int8Table = int8Table(this.spec, options.quantization);
    }
    this.decodeOptions = { limitInputPixels: options.limitInputPixels };
  }

  /** Decoded, cropped, resized 8-bit RGB (HWC) pixels of one image. Rejects with ImageError. */
  pixels(input: ImageInput, name?: string): Promise<Pixels> {
    return decodeToPixels(input, this.spec, this.width, this.height, { ...this.decodeOptions, name: name ?? describeInput(input) });
  }

  /** One image as float NCHW [1, 3, H, W]. */
  async float(input: ImageInput): Promise<Float32Array> {
    const px = await this.pixels(input);
    const out = new Float32Array(3 * this.width * this.height);
    pixelsToFloatNCHW(px.data, this.floatTable, out, 0);
    return out;
  }

  /** One image as int8 NHWC [1, H, W, 3]. */
  async int8(input: ImageInput): Promise<Int8Array> {
    const table = this.requireInt8();
    const px = await this.pixels(input);
    const out = new Int8Array(3 * this.width * this.height);
    pixelsToNHWC(px.data, table, out, 0);
    return out;
  }

  /** Writes decoded pixels into slot n of a float NCHW batch. */
  writeFloat(px: Pixels, out: Float32Array, n: number): void {
    pixelsToFloatNCHW(px.data, this.floatTable, out, n);
  }

  /** Writes decoded pixels into slot n of an int8 NHWC batch. */
  writeInt8(px: Pixels, out: Int8Array, n: number): void {
    pixelsToNHWC(px.data, this.requireInt8(), out, n);
  }

  /** Many images as one float NCHW batch; a failed image leaves its slot zero and its error in `errors`. */
  async floatBatch(inputs: ImageInput[]): Promise<BatchResult<Float32Array>> {
    const out = new Float32Array(inputs.length * 3 * this.width * this.height);
    const errors = await this.fill(inputs, (px, n) => this.writeFloat(px, out, n));
    return { data: out, shape: [inputs.length, 3, this.height, this.width], errors };
  }

  /** Many images as one int8 NHWC batch; a failed image leaves its slot zero and its error in `errors`. */
  async int8Batch(inputs: ImageInput[]): Promise<BatchResult<Int8Array>> {
    this.requireInt8();
    const out = new Int8Array(inputs.length * 3 * this.width * this.height);
    const errors = await this.fill(inputs, (px, n) => this.writeInt8(px, out, n));
    return { data: out, shape: [inputs.length, this.height, this.width, 3], errors };
  }

  private async fill(inputs: ImageInput[], write: (px: Pixels, n: number) => void): Promise<(ImageError | undefined)[]> {
    const settled = await Promise.allSettled(inputs.map((inp, i) => this.pixels(inp, describeInput(inp, i))));
    return settled.map((s, i) => {
      if (s.status === 'fulfilled') {
        write(s.value, i);
        return undefined;
      }
      return s.reason instanceof ImageError ? s.reason : new ImageError(describeInput(inputs[i], i), String((s.reason as Error)?.message ?? s.reason));
    });
  }

  private requireInt8(): Int8Array {
    if (!this.int8Table) throw new Error('this image pipeline has no input quantization: int8 output needs { quantization: { scale, zeroPoint } }');
    return this.int8Table;
  }
}
