// Applying a preprocessing spec (lib/preprocess-spec.ts) to images: the geometry (which region of the image is
// resampled to the model's input size), the value tables, and writing pixels into NCHW / NHWC batches.
//
// Because the value map depends only on (channel, p), it is a 256-entry table per channel. The float
// input is read from a float32 table; the int8 input from an int8 table built by quantizing the float32
// table with ONNX Runtime's QuantizeLinear rule: saturate(round_half_even(x / s) + zp). So the int8
// tensor equals QuantizeLinear(float tensor) exactly, and no float tensor is ever built for int8 models.
import { quantizeLinear, roundHalfEven } from '../numerics/quantization';
import { PreprocessSpec } from '../preprocess-spec';

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
