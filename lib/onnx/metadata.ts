// The ONNX metadata_props mnq reads and writes: every key it uses, and the one reader.
import { onnx, readModel } from './proto';

/** Keys that carry a model's preprocessing and labels (written by `mnq calibrate`; read by the runtime, classify, compare, check-ort). */
export const METADATA_KEYS = Object.freeze({
  /** a preprocessing name ('tf', 'torch', 'raw', 'paddle') or a JSON spec (see parsePreprocess) */
  preprocess: 'mnq.preprocess',
  /** a label set name ('imagenet-1001', 'imagenet-1000') or a file path */
  labels: 'mnq.labels',
});

/** Keys `mnq calibrate` writes about how the int8 model was made. */
export const CALIB_KEYS = Object.freeze({
  method: 'mnq.calibration.method',
  images: 'mnq.calibration.images',
  /** mixed precision (JSON, lib/calibrate/int16.ts int16Metadata): the int16 tensors, what each buys, their share */
  int16: 'mnq.calibration.int16',
  sourceSha256: 'mnq.source.sha256',
  source: 'mnq.source',
});

/** Keys the MobileNet builder writes about the architecture it built. */
export const BUILDER_KEYS = Object.freeze({
  arch: 'mnq.arch',
  width: 'mnq.width',
  resolution: 'mnq.resolution',
  classes: 'mnq.classes',
  padding: 'mnq.padding',
  bn: 'mnq.bn',
  /** the file the weights came from */
  weights: 'mnq.weights',
  /** the seed of random weights */
  seed: 'mnq.seed',
});

/** A model's metadata_props as key → value (entries without a key are skipped; a repeated key: the last value). */
export function readMetadata(model: onnx.IModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) out[p.key] = p.value ?? '';
  return out;
}

/** The metadata_props of an ONNX file or bytes. */
export function fileMetadata(pathOrBytes: string | Uint8Array): Record<string, string> {
  return readMetadata(readModel(pathOrBytes));
}
