// Decoding with sharp: any format sharp reads → EXIF-oriented, sRGB, 8-bit RGB (alpha dropped), cropped
// and resized per a PreprocessSpec to the model's input size. Errors are ImageErrors naming the image.
import * as fs from 'fs';
import { loadSharp, SharpImage } from './sharp';
import { geometry } from './preprocess';
import { PreprocessSpec } from '../preprocess-spec';

/** Raw 8-bit pixels given directly: `channels` interleaved values per pixel, row-major. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) */
  channels: 1 | 2 | 3 | 4;
}

/** An image: a file path, the bytes of an encoded image file (JPEG, PNG, WebP, …) or raw pixels. */
export type ImageInput = string | Uint8Array | ArrayBuffer | RawImage;

/** A per-image failure: which image, and what is wrong with it. */
export class ImageError extends Error {
  /** the file path, or a description like 'image #3 (buffer)' */
  readonly image: string;
  constructor(image: string, message: string) {
    super(`${image}: ${message}`);
    this.name = 'ImageError';
    this.image = image;
  }
}

// Reject images whose decoding fails or is cut short (libvips errors, truncation), but not JPEGs that only
// draw libjpeg warnings such as "N extraneous bytes before marker": they decode fine and are common in real
// photo collections (sharp's default, 'warning', rejects them).
const FAIL_ON = 'error';

/** Default pixel limit, sharp's own: 0x3FFF × 0x3FFF. */
export const DEFAULT_PIXEL_LIMIT = 0x3fff * 0x3fff;

export interface DecodeOptions {
  /** refuse images with more pixels than this (width × height); default 268402689, like sharp; false: no limit */
  limitInputPixels?: number | false;
  /** name used in error messages for non-path inputs */
  name?: string;
}

/** 8-bit RGB pixels, HWC. */
export interface Pixels {
  data: Buffer;
  width: number;
  height: number;
}

/** A short name for an input, for messages. */
export function describeInput(input: ImageInput, index?: number): string {
  if (typeof input === 'string') return input;
  const n = index === undefined ? '' : ` #${index}`;
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) return `image${n} (${input.byteLength}-byte buffer)`;
  if (input && typeof input === 'object' && 'data' in input) return `image${n} (${input.width}x${input.height} raw pixels)`;
  return `image${n}`;
}

function sharpMessage(e: unknown): string {
  const m = (e as Error)?.message ?? String(e);
  return m.replace(/\s+/g, ' ').trim();
}

/** Turns sharp's messages into ones a user can act on. */
function explain(e: unknown, limit: number | false): string {
  const m = sharpMessage(e);
  if (/unsupported image format|bad seek|not a known file format|no loader/i.test(m)) {
    return 'unsupported or unrecognised image format (sharp reads JPEG, PNG, WebP, GIF, AVIF, TIFF, SVG, HEIF)';
  }
  if (/exceeds pixel limit/i.test(m)) {
    return `image exceeds the pixel limit of ${limit} pixels (raise it with limitInputPixels / --max-pixels)`;
  }
  if (/premature end|truncated|unexpected end|end of (file|stream|data)|short read|read error|out of data/i.test(m)) {
    return `truncated image (${m})`;
  }
  return `corrupt or unreadable image (${m})`;
}

function validateRaw(raw: RawImage, name: string): void {
  const { width, height, channels, data } = raw;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError(name, `raw image width and height must be positive integers, got ${width}x${height}`);
  }
  if (![1, 2, 3, 4].includes(channels)) throw new ImageError(name, `raw image channels must be 1, 2, 3 or 4, got ${channels}`);
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw new ImageError(name, 'raw image data must be a Uint8Array of 8-bit values');
  }
  if (data.length !== width * height * channels) {
    throw new ImageError(name, `raw image data has ${data.length} bytes, expected ${width}x${height}x${channels} = ${width * height * channels}`);
  }
}

/**
 * Decodes `input` and returns the model-input-sized 8-bit RGB pixels (HWC) per `spec`.
 * Throws ImageError (never anything else) for a missing, unreadable, corrupt, truncated, unsupported or
 * too large image. The caller's buffers are not modified.
 */
export async function decodeToPixels(
  input: ImageInput, spec: PreprocessSpec, width: number, height: number, options: DecodeOptions = {},
): Promise<Pixels> {
  const name = options.name ?? describeInput(input);
  const limit = options.limitInputPixels === undefined ? DEFAULT_PIXEL_LIMIT : options.limitInputPixels;
  if (limit !== false && !(Number.isInteger(limit) && limit > 0)) {
    throw new RangeError(`limitInputPixels must be a positive integer or false, got ${limit}`);
  }
  const sharpLimit = limit === false ? false : limit;
  const sharp = loadSharp();
  let img: SharpImage;
  if (typeof input === 'string') {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(input);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ImageError(name, code === 'ENOENT' ? 'file not found' : `cannot read file (${sharpMessage(e)})`);
    }
    if (st.isDirectory()) throw new ImageError(name, 'is a directory, not an image file');
    if (st.size === 0) throw new ImageError(name, 'empty file');
    img = sharp(input, { autoOrient: true, limitInputPixels: sharpLimit, failOn: FAIL_ON });
  } else if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
    if (input.byteLength === 0) throw new ImageError(name, 'empty buffer');
    const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : input;
    img = sharp(bytes, { autoOrient: true, limitInputPixels: sharpLimit, failOn: FAIL_ON });
  } else if (input && typeof input === 'object' && 'data' in input) {
    validateRaw(input, name);
    const { width: w, height: h, channels } = input;
    if (limit !== false && w * h > limit) {
      throw new ImageError(name, `image has ${w}x${h} = ${w * h} pixels, more than the limit of ${limit} (raise it with limitInputPixels / --max-pixels)`);
    }
    const bytes = input.data instanceof Uint8ClampedArray ? new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.length) : input.data;
    img = sharp(bytes, { raw: { width: w, height: h, channels }, limitInputPixels: sharpLimit });
  } else {
    throw new ImageError(name, 'not an image: expected a file path, encoded image bytes (Uint8Array) or {data, width, height, channels}');
  }

  let srcW: number;
  let srcH: number;
  let hasAlpha = false;
  try {
    const meta = await img.metadata();
    hasAlpha = !!meta.hasAlpha;
    srcW = meta.autoOrient?.width ?? meta.width;
    srcH = meta.autoOrient?.height ?? meta.height;
    if (!srcW || !srcH) throw new Error('image has no dimensions');
    if (limit !== false && meta.width * meta.height > limit) {
      throw new ImageError(name, `image has ${meta.width}x${meta.height} = ${meta.width * meta.height} pixels, more than the limit of ${limit} (raise it with limitInputPixels / --max-pixels)`);
    }
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(name, explain(e, limit));
  }

  const g = geometry(spec, srcW, srcH, width, height);
  try {
    let p = img;
    if (hasAlpha) {
      // sharp resizes images with alpha premultiplied, which blends transparent pixels' colours away; "drop
      // alpha" means the colour channels as stored, so drop it before resizing (one extra decode pass)
      const rgb = await img.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      p = sharp(rgb.data, { raw: { width: rgb.info.width, height: rgb.info.height, channels: rgb.info.channels as 3 } });
    }
    if (g.preCrop) p = p.extract(g.preCrop);
    p = p.resize(g.resize.width, g.resize.height, { fit: 'fill', kernel: spec.kernel });
    if (g.postCrop) p = p.extract(g.postCrop);
    const { data, info } = await p
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== width || info.height !== height || data.length !== width * height * 3) {
      throw new Error(`unexpected decoded layout ${info.width}x${info.height}x${info.channels}`);
    }
    return { data, width, height };
  } catch (e) {
    throw new ImageError(name, explain(e, limit));
  }
}
