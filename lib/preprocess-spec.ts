// Preprocessing specifications: how an image becomes a model input, as a value (a name, JSON or an object)
// that users give and `mnq calibrate` stores in a model's metadata (METADATA_KEYS.preprocess). A spec has
// two parts:
//  - geometry: which region of the (EXIF-oriented, sRGB, 8-bit RGB) image is resampled to the model's
//    input size, and how;
//  - values: each 8-bit pixel value p of channel c becomes  (p * scale - mean[c]) / std[c].
// Parsing and formatting only: lib/image applies a spec to images.

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
