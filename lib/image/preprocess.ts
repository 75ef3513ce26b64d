// Preprocessing specifications: how an image becomes a model input.
//
// A spec has two parts:
//  - geometry: which region of the (EXIF-oriented, sRGB, 8-bit RGB) image is resampled to the model's
//    input size, and how;
//  - values: each 8-bit pixel value p of channel c becomes  (p * scale - mean[c]) / std[c].
//
// Because the value map depends only on (channel, p), it is a 256-entry table per channel. The float
// input is read from a float32 table; the int8 input from an int8 table built by quantizing the float32
// table with ONNX Runtime's QuantizeLinear rule: saturate(round_half_even(x / s) + zp). So the int8
// tensor equals QuantizeLinear(float tensor) exactly, and no float tensor is ever built for int8 models.
import { quantizeLinear, roundHalfEven } from '../numerics/quantization';

/** How the image is cropped and resized to the model's input size. */
export type ResizeMode =
  /** TF-slim / Keras eval: keep the central `cropFraction` of each side, then resize to the model size
   *  (aspect ratio not preserved). */
  | 'crop-then-resize'
  /** torchvision eval: resize so the shorter side is round(size / cropFraction) (256 for 224), keeping the
   *  aspect ratio, then take the centre size×size crop. */
  | 'resize-then-crop'
  /** resize the whole image to the model size (aspect ratio not preserved). */
  | 'stretch';

export interface PreprocessSpec {
  /** the name it was made from ('tf', 'torch', 'raw', 'paddle') or 'custom' */
  name: string;
  resize: ResizeMode;
  /** fraction of each side kept by the centre crop (0 < f ≤ 1); ignored by 'stretch' */
  cropFraction: number;
  /** value = (pixel * scale - mean[c]) / std[c], c in R, G, B */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** resampling kernel of the resize (sharp kernel name); default 'linear' (bilinear) */
  kernel: 'linear' | 'cubic' | 'nearest' | 'lanczos3' | 'mitchell';
  /** input size [height, width]; taken from the model when absent */
  size?: [number, number];
}

const TORCH_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const TORCH_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** The named preprocessings. */
export const PREPROCESS: Readonly<Record<string, Readonly<PreprocessSpec>>> = Object.freeze({
  /** TensorFlow / TF-slim MobileNets: central 87.5% crop, bilinear resize, (p - 127.5) / 127.5 in [-1, 1] */
  tf: { name: 'tf', resize: 'crop-then-resize', cropFraction: 0.875, scale: 1, mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5], kernel: 'linear' },
  /** torchvision: shorter side 256 (for 224), centre crop, /255, ImageNet mean / std */
  torch: { name: 'torch', resize: 'resize-then-crop', cropFraction: 0.875, scale: 1 / 255, mean: TORCH_MEAN, std: TORCH_STD, kernel: 'linear' },
  /** TF geometry, values left as 0..255 (models that rescale inside the graph, e.g. Keras MobileNetV3) */
  raw: { name: 'raw', resize: 'crop-then-resize', cropFraction: 0.875, scale: 1, mean: [0, 0, 0], std: [1, 1, 1], kernel: 'linear' },
  /** PaddleOCR / PaddleClas: whole image, (p / 255 - 0.5) / 0.5 */
  paddle: { name: 'paddle', resize: 'stretch', cropFraction: 1, scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], kernel: 'linear' },
} as Record<string, PreprocessSpec>);

/** ONNX metadata_props keys that carry a model's preprocessing and labels (written by `mnq calibrate`). */
export const METADATA_KEYS = Object.freeze({
  /** a preprocessing name ('tf', 'torch', 'raw', 'paddle') or a JSON spec (see parsePreprocess) */
  preprocess: 'mnq.preprocess',
  /** a label set name ('imagenet-1001', 'imagenet-1000') or a file path */
  labels: 'mnq.labels',
});

const RESIZE_MODES: ResizeMode[] = ['crop-then-resize', 'resize-then-crop', 'stretch'];
const KERNELS = ['linear', 'cubic', 'nearest', 'lanczos3', 'mitchell'];

function triple(v: unknown, what: string): [number, number, number] {
  if (typeof v === 'number') v = [v, v, v];
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new TypeError(`preprocess: '${what}' must be a number or an array of 3 numbers (R, G, B), got ${JSON.stringify(v)}`);
  }
  return [v[0], v[1], v[2]];
}

/** A spec as users write it: any fields of PreprocessSpec over a named `base`; numbers for per-channel triples. */
export type PreprocessSpecInput = Partial<Omit<PreprocessSpec, 'mean' | 'std' | 'size'>> & {
  base?: string;
  mean?: number | number[];
  std?: number | number[];
  size?: number | number[];
};

/**
 * Makes a spec from a name ('tf', 'torch', 'raw', 'paddle'), a JSON string or an object. A JSON / object
 * spec may name a `base` (default 'tf') and override any field, e.g.
 * `{"base":"torch","size":[160,160]}` or `{"resize":"stretch","scale":1,"mean":127.5,"std":127.5}`.
 */
export function parsePreprocess(spec: string | PreprocessSpecInput): PreprocessSpec {
  let obj: Record<string, unknown>;
  if (typeof spec === 'string') {
    const s = spec.trim();
    if (!s.startsWith('{')) {
      const named = PREPROCESS[s];
      if (!named) {
        throw new Error(`unknown preprocessing '${spec}': use one of ${Object.keys(PREPROCESS).join(', ')} or a JSON spec`);
      }
      return { ...named, mean: [...named.mean], std: [...named.std] } as PreprocessSpec;
    }
    try {
      obj = JSON.parse(s) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`preprocessing spec is not valid JSON: ${(e as Error).message}`);
    }
  } else if (spec && typeof spec === 'object') {
    obj = spec as Record<string, unknown>;
  } else {
    throw new TypeError('preprocess must be a name, a JSON string or an object');
  }
  const known = ['base', 'name', 'resize', 'cropFraction', 'scale', 'mean', 'std', 'kernel', 'size'];
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) throw new Error(`preprocess: unknown field '${k}' (known: ${known.join(', ')})`);
  }
  const baseName = obj.base === undefined ? 'tf' : String(obj.base);
  const base = parsePreprocess(baseName);
  const overrides = Object.keys(obj).some((k) => k !== 'base' && k !== 'name');
  const out: PreprocessSpec = { ...base, name: typeof obj.name === 'string' ? obj.name : overrides ? 'custom' : base.name };
  if (obj.resize !== undefined) {
    if (!RESIZE_MODES.includes(obj.resize as ResizeMode)) {
      throw new Error(`preprocess: 'resize' must be one of ${RESIZE_MODES.join(', ')}, got ${JSON.stringify(obj.resize)}`);
    }
    out.resize = obj.resize as ResizeMode;
  }
  if (obj.cropFraction !== undefined) {
    const f = obj.cropFraction;
    if (typeof f !== 'number' || !(f > 0 && f <= 1)) throw new Error(`preprocess: 'cropFraction' must be in (0, 1], got ${JSON.stringify(f)}`);
    out.cropFraction = f;
  }
  if (obj.scale !== undefined) {
    if (typeof obj.scale !== 'number' || !Number.isFinite(obj.scale)) throw new Error(`preprocess: 'scale' must be a finite number`);
    out.scale = obj.scale;
  }
  if (obj.mean !== undefined) out.mean = triple(obj.mean, 'mean');
  if (obj.std !== undefined) {
    out.std = triple(obj.std, 'std');
    if (out.std.some((s) => s === 0)) throw new Error(`preprocess: 'std' must not contain 0`);
  }
  if (obj.kernel !== undefined) {
    if (!KERNELS.includes(obj.kernel as string)) throw new Error(`preprocess: 'kernel' must be one of ${KERNELS.join(', ')}`);
    out.kernel = obj.kernel as PreprocessSpec['kernel'];
  }
  if (obj.size !== undefined) {
    let sz = obj.size;
    if (typeof sz === 'number') sz = [sz, sz];
    if (!Array.isArray(sz) || sz.length !== 2 || !sz.every((x) => Number.isInteger(x) && x > 0 && x <= 16384)) {
      throw new Error(`preprocess: 'size' must be a positive integer or [height, width], got ${JSON.stringify(obj.size)}`);
    }
    out.size = [sz[0], sz[1]];
  }
  return out;
}

/** The spec in the form parsePreprocess reads back (for metadata_props and --json output). */
export function formatPreprocess(spec: PreprocessSpec): string {
  const named = PREPROCESS[spec.name];
  if (named && !spec.size && sameValues(named, spec)) return spec.name;
  const { name: _name, ...rest } = spec;
  return JSON.stringify({ base: 'tf', ...rest });
}

function sameValues(a: PreprocessSpec, b: PreprocessSpec): boolean {
  return a.resize === b.resize && a.cropFraction === b.cropFraction && a.scale === b.scale && a.kernel === b.kernel &&
    a.mean.every((v, i) => v === b.mean[i]) && a.std.every((v, i) => v === b.std[i]);
}

// ---------------------------------------------------------------------------------------------------
// Geometry

/** A region of the oriented source image, and the operations that turn it into the model input. */
export interface Geometry {
  /** region cut from the source before resizing (crop-then-resize) */
  preCrop?: { left: number; top: number; width: number; height: number };
  /** size the (cropped) image is resized to */
  resize: { width: number; height: number };
  /** region cut after resizing (resize-then-crop) */
  postCrop?: { left: number; top: number; width: number; height: number };
}

/**
 * Where the model input comes from, for a source image of srcWidth×srcHeight (after EXIF orientation)
 * and a model input of width×height. Follows tf.image.central_crop and torchvision's Resize + CenterCrop.
 */
export function geometry(spec: PreprocessSpec, srcWidth: number, srcHeight: number, width: number, height: number): Geometry {
  if (spec.resize === 'stretch' || spec.cropFraction === 1 && spec.resize === 'crop-then-resize') {
    return { resize: { width, height } };
  }
  if (spec.resize === 'crop-then-resize') {
    // tf.image.central_crop: start = int((n - n * f) / 2), size = n - 2 * start
    const top = Math.trunc((srcHeight - srcHeight * spec.cropFraction) / 2);
    const left = Math.trunc((srcWidth - srcWidth * spec.cropFraction) / 2);
    const h = Math.max(1, srcHeight - 2 * top);
    const w = Math.max(1, srcWidth - 2 * left);
    return { preCrop: { left: Math.min(left, srcWidth - 1), top: Math.min(top, srcHeight - 1), width: w, height: h }, resize: { width, height } };
  }
  // torchvision Resize(int(min(h, w) / f)): the shorter side becomes S, the longer int(S * long / short)
  const S = Math.round(Math.min(width, height) / spec.cropFraction);
  let rw: number;
  let rh: number;
  if (srcWidth <= srcHeight) {
    rw = S;
    rh = Math.trunc((S * srcHeight) / srcWidth);
  } else {
    rh = S;
    rw = Math.trunc((S * srcWidth) / srcHeight);
  }
  // a non-square model input can need more than the shorter side gives: grow to cover
  if (rw < width || rh < height) {
    const k = Math.max(width / rw, height / rh);
    rw = Math.max(width, Math.ceil(rw * k));
    rh = Math.max(height, Math.ceil(rh * k));
  }
  // torchvision CenterCrop: top = int(round((h - ch) / 2))
  const top = roundHalfEven((rh - height) / 2);
  const left = roundHalfEven((rw - width) / 2);
  return { resize: { width: rw, height: rh }, postCrop: { left, top, width, height } };
}

// ---------------------------------------------------------------------------------------------------
// Value tables

/** The float value of every 8-bit pixel value, per channel: 3 × 256 float32 (R then G then B). */
export function floatTable(spec: PreprocessSpec): Float32Array {
  const t = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 256; p++) t[c * 256 + p] = (p * spec.scale - spec.mean[c]) / spec.std[c];
  }
  return t;
}

/** Input quantization of an int8 model: real = scale * (q - zeroPoint). */
export interface InputQuantization { scale: number; zeroPoint: number }

/** The int8 input value of every 8-bit pixel value, per channel: 3 × 256 int8, = QuantizeLinear(floatTable). */
export function int8Table(spec: PreprocessSpec, quant: InputQuantization): Int8Array {
  if (!(quant.scale > 0) || !Number.isFinite(quant.scale)) {
    throw new RangeError(`input quantization scale must be a positive finite number, got ${quant.scale}`);
  }
  if (!Number.isInteger(quant.zeroPoint) || quant.zeroPoint < -128 || quant.zeroPoint > 127) {
    throw new RangeError(`int8 input zero point must be an integer in [-128, 127], got ${quant.zeroPoint}`);
  }
  const f = floatTable(spec);
  const t = new Int8Array(3 * 256);
  for (let i = 0; i < t.length; i++) t[i] = quantizeLinear(f[i], quant.scale, quant.zeroPoint);
  return t;
}

/**
 * Writes one image's 8-bit RGB pixels (HWC, 3 channels) as float NCHW into `out` at image slot `n`
 * (out holds a batch of 3×H×W planes per image).
 */
export function pixelsToFloatNCHW(rgb: Uint8Array, table: Float32Array, out: Float32Array, n = 0): void {
  const hw = rgb.length / 3;
  const base = n * 3 * hw;
  if (base + 3 * hw > out.length) throw new RangeError('pixelsToFloatNCHW: output buffer too small');
  const r = base;
  const g = base + hw;
  const b = base + 2 * hw;
  for (let i = 0, j = 0; i < hw; i++, j += 3) {
    out[r + i] = table[rgb[j]];
    out[g + i] = table[256 + rgb[j + 1]];
    out[b + i] = table[512 + rgb[j + 2]];
  }
}

/**
 * Writes one image's 8-bit RGB pixels (HWC) as NHWC into `out` at image slot `n`, through the table: int8 for an
 * int8 model's input (int8Table), float for a float model that takes NHWC (floatTable).
 */
export function pixelsToNHWC<T extends Int8Array | Float32Array>(rgb: Uint8Array, table: T, out: T, n = 0): void {
  const len = rgb.length;
  const base = n * len;
  if (base + len > out.length) throw new RangeError('pixelsToNHWC: output buffer too small');
  for (let j = 0; j < len; j += 3) {
    out[base + j] = table[rgb[j]];
    out[base + j + 1] = table[256 + rgb[j + 1]];
    out[base + j + 2] = table[512 + rgb[j + 2]];
  }
}

/**
 * A batch of images [batch][c][h][w] (NCHW) as [batch][h][w][c] (NHWC), or back with `toNchw`; a copy.
 * `channel` maps an NCHW channel to where the NHWC data holds it (default: itself).
 */
export function transposeImages<T extends Float32Array | Int8Array>(
  x: T, batch: number, c: number, h: number, w: number, toNchw: boolean, channel: (ch: number) => number = (ch) => ch,
): T {
  const hw = h * w;
  const out = new (x.constructor as { new (n: number): T })(x.length);
  for (let n = 0; n < batch; n++) {
    const base = n * c * hw;
    for (let ch = 0; ch < c; ch++) {
      const at = channel(ch);
      for (let p = 0; p < hw; p++) {
        if (toNchw) out[base + ch * hw + p] = x[base + p * c + at];
        else out[base + p * c + at] = x[base + ch * hw + p];
      }
    }
  }
  return out;
}

/** A batch of float NCHW images in the given layout: themselves for 'nchw', an NHWC copy for 'nhwc'. */
export function imageInLayout(x: Float32Array, c: number, h: number, w: number, layout: 'nchw' | 'nhwc', batch = 1): Float32Array {
  return layout === 'nchw' ? x : transposeImages(x, batch, c, h, w, false);
}

/** The ONNX shape of a batch of images in a layout. */
export function imageShape(c: number, h: number, w: number, layout: 'nchw' | 'nhwc', batch = 1): number[] {
  return layout === 'nchw' ? [batch, c, h, w] : [batch, h, w, c];
}
