// MobileNet builder: public API.
//
//   const m = buildMobileNet('v3-small', { width: 0.75, resolution: 192, seed: 1 });
//   saveModel(m, 'v3s.onnx');            // float ONNX, dynamic batch
//   m.counts.params, m.counts.macs        // conv + linear, BN folded
//   buildMobileNet('v2', { weights: 'mobilenet_v2_1.0_224_quant.float.onnx' })  // real weights
import { onnx, readModel, encodeModel } from '../onnx/proto';
import { writeModel } from '../onnx/writer';
import { BUILDER_KEYS } from '../onnx/metadata';
import { Arch, ArchOptions, buildNet, parseArch, checkArchOptions } from './architectures';
import { EmitOptions, LayerWeights, Padding, checkOpset, emitOnnx } from './emit';
import { inspectOnnx } from './inspect';
import { LoadReport, mapWeights, sourceFacts } from './load';
import { Counts, Net, countNet, weightLayers, weightShape } from './net';
import { randomWeights } from './random';

export * from './net';
export { ARCHITECTURES, Arch, ArchOptions, buildNet, parseArch, checkArchOptions } from './architectures';
export { LayerWeights, BatchNorm, Padding, EmitOptions, emitOnnx, foldBatchNorm, convPads } from './emit';
export { inspectOnnx, OnnxLayer, OnnxStructure } from './inspect';
export { LoadReport, mapWeights } from './load';
export { randomWeights } from './random';
export { Rng } from './rng';

export interface BuildOptions extends ArchOptions {
  /** Seed for random weights (default 0). Ignored when `weights` is given. */
  seed?: number;
  /** Float ONNX model (path, bytes or decoded) whose conv/linear weights are loaded in order. */
  weights?: string | Uint8Array | onnx.IModelProto;
  /** ONNX opset, 13 to 21 (default 17). */
  opset?: number;
  /** Batch norm folded into the convs (default) or kept as BatchNormalization nodes. */
  bn?: 'fold' | 'keep';
  /** Conv padding; default 'symmetric', or the source's style when loading weights. */
  padding?: Padding;
  /** When loading weights from a graph that rescales its own input (Keras), keep that rescaling (default true). */
  keepInputTransform?: boolean;
}

export interface BuiltModel {
  net: Net;
  model: onnx.ModelProto;
  counts: Counts;
  /** How the weights were loaded (only with `weights`). */
  load?: LoadReport;
}

const CANDIDATE_WIDTHS = [1, 0.75, 0.5, 0.35, 0.25, 1.3, 1.4, 1.25, 1.5, 2, 0.125];

function fits(net: Net, shapes: number[][]): boolean {
  const mine = weightLayers(net).map(weightShape);
  if (mine.length !== shapes.length) return false;
  const flat = (s: number[]) => (s.length === 4 && s[2] === 1 && s[3] === 1 ? s.slice(0, 2) : s).join('x');
  return mine.every((s, i) => flat(s) === flat(shapes[i]));
}

/** Builds a MobileNet with random (seeded) or loaded weights as a float ONNX model. */
export function buildMobileNet(archName: string, options: BuildOptions = {}): BuiltModel {
  const arch: Arch = parseArch(archName);
  const opset = checkOpset(options.opset ?? 17);
  const bn = options.bn ?? 'fold';
  if (bn !== 'fold' && bn !== 'keep') throw new Error(`bn must be 'fold' or 'keep', got '${bn as string}'`);
  if (options.padding !== undefined && options.padding !== 'symmetric' && options.padding !== 'tf-same') {
    throw new Error(`padding must be 'symmetric' or 'tf-same', got '${options.padding as string}'`);
  }
  let net: Net;
  let weights: LayerWeights[];
  let load: LoadReport | undefined;
  let padding: Padding = options.padding ?? 'symmetric';
  let inputTransform: EmitOptions['inputTransform'];
  const metadata: Record<string, string> = {};
  if (options.weights !== undefined) {
    const sourceName = typeof options.weights === 'string' ? options.weights : 'weights model';
    const model = typeof options.weights === 'string' || options.weights instanceof Uint8Array
      ? readModel(options.weights) : options.weights;
    const src = inspectOnnx(model, { withWeights: true });
    if (src.layers.length === 0) throw new Error(`weights file '${sourceName}' has no conv or linear layers`);
    const facts = sourceFacts(src);
    const base = {
      resolution: options.resolution ?? facts.resolution ?? 224,
      classes: options.classes ?? facts.classes,
    };
    checkArchOptions({ ...base, width: options.width });
    let width = options.width;
    let guessed = false;
    if (width === undefined) {
      const shapes = src.layers.map((l) => l.weightShape);
      width = CANDIDATE_WIDTHS.find((w) => fits(buildNet(arch, { ...base, width: w }), shapes));
      if (width === undefined) {
        width = 1;
        guessed = true;
      }
    }
    net = buildNet(arch, { ...base, width });
    let mapped: ReturnType<typeof mapWeights>;
    try {
      mapped = mapWeights(net, src, sourceName);
    } catch (e) {
      if (!guessed) throw e;
      throw new Error(`${(e as Error).message} (no width among ${CANDIDATE_WIDTHS.join(', ')} fits the file: `
        + `is it a ${arch} MobileNet? Pass --width to see the mismatch at another width)`);
    }
    weights = mapped.weights;
    load = mapped.report;
    padding = options.padding ?? facts.padding;
    if (options.keepInputTransform !== false) inputTransform = facts.inputTransform;
    metadata[BUILDER_KEYS.weights] = typeof options.weights === 'string' ? options.weights.split(/[\\/]/).pop() ?? '' : 'loaded';
  } else {
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${options.seed}`);
    net = buildNet(arch, options);
    weights = randomWeights(net, seed);
    metadata[BUILDER_KEYS.seed] = String(seed);
  }
  const model = emitOnnx(net, weights, { opset, bn, padding, inputTransform, metadata });
  return { net, model, counts: countNet(net), load };
}

/** Parameters and MACs of an architecture without building weights. */
export function countArch(archName: string, options: ArchOptions = {}): Counts & { net: Net } {
  const net = buildNet(parseArch(archName), options);
  return { ...countNet(net), net };
}

/** Writes the model atomically (nothing is left behind on error). */
export function saveModel(built: BuiltModel, file: string): void {
  writeModel(file, built.model);
}

export function modelBytes(built: BuiltModel): Uint8Array {
  return encodeModel(built.model);
}
