// Maps a float ONNX MobileNet's conv / linear weights, in graph order, onto a built Net.
import { LayerWeights, Padding } from './emit';
import { OnnxLayer, OnnxStructure } from './inspect';
import { Net, WeightLayer, weightLayers, weightShape } from './net';

export interface LoadReport {
  /** Source layers mapped (all of them). */
  layers: number;
  /** Padding style the source uses (TF files: asymmetric SAME). */
  padding: Padding;
  /** Classes of the source's classifier. */
  classes: number;
  /** Input resolution of the source, if static. */
  resolution?: number;
  inputTransform?: { scale: number; bias: number };
  /** Layers where the source has an extra ReLU before an h-sigmoid. */
  preReluLayers: string[];
  /** Layers whose h-sigmoid bias had the +3 folded in (Keras/TFLite), undone on load. */
  biasUnfoldedLayers: string[];
}

/** What the source model implies for the build: padding, classes, resolution. */
export function sourceFacts(src: OnnxStructure): Pick<LoadReport, 'padding' | 'classes' | 'resolution' | 'inputTransform'> {
  const asym = src.layers.some((l) => l.type !== 'linear' && (l.pads[0] !== l.pads[2] || l.pads[1] !== l.pads[3]));
  const last = src.layers[src.layers.length - 1];
  const s = src.input.shape;
  const resolution = typeof s[2] === 'number' && s[2] === s[3] && s[2] > 0 ? s[2] : undefined;
  return { padding: asym ? 'tf-same' : 'symmetric', classes: last ? last.weightShape[0] : 0, resolution, inputTransform: src.inputTransform };
}

function describe(l: WeightLayer): string {
  return l.kind === 'conv'
    ? `${l.name} (${l.groups > 1 ? 'depthwise ' : ''}conv ${l.kernel}x${l.kernel} stride ${l.stride}, ${l.act})`
    : `${l.name} (linear, ${l.act})`;
}

function describeSrc(s: OnnxLayer): string {
  return `'${s.node}' (${s.opType}${s.type === 'linear' ? '' : ` group ${s.group} stride ${s.strides[0]}`}, ${s.act})`;
}

/** Same weight shape, allowing [O, I] <-> [O, I, 1, 1]. */
function sameShape(a: number[], b: number[]): boolean {
  const norm = (s: number[]) => (s.length === 4 && s[2] === 1 && s[3] === 1 ? s.slice(0, 2) : s);
  const x = norm(a);
  const y = norm(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Maps the source layers onto the net's weight layers in order. Throws an Error naming
 * the first layer whose shape, grouping, stride or activation differs.
 */
export function mapWeights(net: Net, src: OnnxStructure, sourceName: string): { weights: LayerWeights[]; report: LoadReport } {
  const mine = weightLayers(net);
  const theirs = src.layers;
  const what = `${net.arch} width ${net.width} at ${net.resolution} with ${net.classes} classes`;
  const prefix = `weights file '${sourceName}' does not fit ${what}`;
  const n = Math.min(mine.length, theirs.length);
  const weights: LayerWeights[] = [];
  const report: LoadReport = { layers: theirs.length, ...sourceFacts(src), preReluLayers: [], biasUnfoldedLayers: [] };
  for (let i = 0; i < n; i++) {
    const m = mine[i];
    const s = theirs[i];
    const expected = weightShape(m);
    const at = `layer ${i}: built ${describe(m)} expects weight [${expected}], source ${describeSrc(s)} has [${s.weightShape}]`;
    if (!sameShape(expected, s.weightShape)) throw new Error(`${prefix}: first mismatch at ${at}`);
    const groups = m.kind === 'conv' ? m.groups : 1;
    const stride = m.kind === 'conv' ? m.stride : 1;
    if (s.type !== 'linear' && (s.group !== groups || s.strides[0] !== stride || s.strides[1] !== stride)) {
      throw new Error(`${prefix}: first mismatch at ${at}, but groups ${s.group} / stride ${s.strides} instead of ${groups} / ${stride}`);
    }
    if (s.act !== 'other' && s.act !== m.act) {
      throw new Error(`${prefix}: first mismatch at ${at}, but is followed by ${s.act} instead of ${m.act}`);
    }
    if (!s.weight || !s.bias) throw new Error(`weights file '${sourceName}': cannot read the weights of layer ${i} ${describeSrc(s)}`);
    let bias = s.bias;
    if (s.hsigmoidBiasFolded && m.act === 'hsigmoid') {
      bias = bias.map((b) => b - 3);
      report.biasUnfoldedLayers.push(m.name);
    }
    if (s.preRelu) report.preReluLayers.push(m.name);
    const w: LayerWeights = { weight: s.weight, bias };
    if (s.preRelu) w.preRelu = true;
    if (m.act === 'hsigmoid' && s.hsigmoidScale !== undefined && s.hsigmoidScale !== Math.fround(1 / 6)) w.hsigmoidScale = s.hsigmoidScale;
    weights.push(w);
  }
  if (mine.length !== theirs.length) {
    const extra = mine.length > theirs.length
      ? `the built model's layer ${n} ${describe(mine[n])} has no source layer`
      : `source layer ${n} ${describeSrc(theirs[n])} has no built layer`;
    throw new Error(`${prefix}: the source has ${theirs.length} conv/linear layers, the built model ${mine.length}; ${extra}`);
  }
  return { weights, report };
}
