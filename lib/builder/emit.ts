// Net + weights -> float ONNX model (opset 13+), dynamic batch.
import { onnx } from '../onnx/proto';
import { GraphWriter, float, int, ints } from '../onnx/writer';
import { BUILDER_KEYS } from '../onnx/metadata';
import { Activation, ConvLayer, Net, WeightLayer, isWeightLayer, weightShape } from './net';

export interface BatchNorm {
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  eps: number;
}

/** Weights of one conv/linear layer. */
export interface LayerWeights {
  /** [O, I/groups, k, k] for conv, [O, I] for linear, row-major. */
  weight: Float32Array;
  /** Conv / linear bias, length O. */
  bias: Float32Array;
  /** Batch norm statistics (layers with bn only); absent when the weights already have BN folded in. */
  bn?: BatchNorm;
  /** An extra ReLU before the activation (the source model clamps there). */
  preRelu?: boolean;
  /**
   * For an h-sigmoid layer: emit it as relu6(x + 3) * hsigmoidScale, the source's own
   * form and constant (TFLite uses 0.16667), instead of HardSigmoid(1/6, 0.5).
   */
  hsigmoidScale?: number;
}

export type Padding = 'symmetric' | 'tf-same';

export interface EmitOptions {
  /** Default-domain opset, 13 to 21. */
  opset: number;
  /** 'fold' (default): BN folded into conv weights and bias; 'keep': separate BatchNormalization nodes. */
  bn: 'fold' | 'keep';
  /** 'symmetric' (PyTorch, pad (k-1)/2) or 'tf-same' (TensorFlow SAME: asymmetric, extra pad after). */
  padding: Padding;
  /** Optional input rescaling x * scale + bias, put in front of the first conv. */
  inputTransform?: { scale: number; bias: number };
  metadata?: Record<string, string>;
  inputName?: string;
  outputName?: string;
}

export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

export function checkOpset(opset: unknown): number {
  if (typeof opset !== 'number' || !Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new Error(`opset must be an integer from ${MIN_OPSET} to ${MAX_OPSET} (13 and 17 are the tested ones), got ${opset}`);
  }
  return opset;
}

/** Pads [top, left, bottom, right] for a conv layer. */
export function convPads(l: ConvLayer, padding: Padding): number[] {
  if (padding === 'symmetric') {
    const p = (l.kernel - 1) / 2;
    return [p, p, p, p];
  }
  const total = (inSize: number, outSize: number) => Math.max((outSize - 1) * l.stride + l.kernel - inSize, 0);
  const th = total(l.inH, l.outH);
  const tw = total(l.inW, l.outW);
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}

/** Folds batch norm into conv weight and bias. */
export function foldBatchNorm(w: LayerWeights, outC: number): { weight: Float32Array; bias: Float32Array } {
  if (!w.bn) return { weight: w.weight, bias: w.bias };
  const { gamma, beta, mean, variance, eps } = w.bn;
  const weight = new Float32Array(w.weight.length);
  const bias = new Float32Array(outC);
  const per = w.weight.length / outC;
  for (let o = 0; o < outC; o++) {
    const s = gamma[o] / Math.sqrt(variance[o] + eps);
    for (let i = 0; i < per; i++) weight[o * per + i] = w.weight[o * per + i] * s;
    bias[o] = (w.bias[o] - mean[o]) * s + beta[o];
  }
  return { weight, bias };
}

export function emitOnnx(net: Net, weights: LayerWeights[], opts: EmitOptions): onnx.ModelProto {
  const opset = checkOpset(opts.opset);
  const g = new GraphWriter({
    name: `mobilenet_${net.arch.replace('-', '_')}`, opset,
    docString: `MobileNet ${net.arch} width ${net.width} resolution ${net.resolution}, built by mnq`,
  });
  const wl = net.layers.filter(isWeightLayer);
  if (weights.length !== wl.length) throw new Error(`emit: ${weights.length} weight sets for ${wl.length} layers`);
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'logits';
  const names = new Map<number, string>();
  names.set(net.input, g.input(inputName, ['N', net.inputChannels, net.resolution, net.resolution]));
  const val = (id: number) => {
    const n = names.get(id);
    if (n === undefined) throw new Error(`emit: value ${id} used before it is computed`);
    return n;
  };
  if (opts.inputTransform) {
    const { scale, bias } = opts.inputTransform;
    const s = g.initializer('input_scale', [], Float32Array.of(scale));
    const b = g.initializer('input_bias', [], Float32Array.of(bias));
    const m = g.op('Mul', [val(net.input), s], {}, 'input_rescale.mul');
    names.set(net.input, g.op('Add', [m, b], {}, 'input_rescale.add'));
  }
  let clipMin: string | null = null;
  let clipMax: string | null = null;
  const relu6 = (x: string, name: string) => {
    clipMin ??= g.initializer('clip_min_0', [], Float32Array.of(0));
    clipMax ??= g.initializer('clip_max_6', [], Float32Array.of(6));
    return g.op('Clip', [x, clipMin, clipMax], {}, name);
  };
  const activation = (x: string, act: Activation, name: string, w?: LayerWeights): string => {
    if (w?.preRelu) x = g.op('Relu', [x], {}, `${name}.prerelu`);
    switch (act) {
      case 'none': return x;
      case 'relu': return g.op('Relu', [x], {}, `${name}.relu`);
      case 'relu6': return relu6(x, `${name}.relu6`);
      case 'hsigmoid':
        if (w?.hsigmoidScale !== undefined) {
          const three = g.initializer(`${name}.hsigmoid.three`, [], Float32Array.of(3));
          const c = g.initializer(`${name}.hsigmoid.scale`, [], Float32Array.of(w.hsigmoidScale));
          const r = relu6(g.op('Add', [x, three], {}, `${name}.hsigmoid.add`), `${name}.hsigmoid.relu6`);
          return g.op('Mul', [r, c], {}, `${name}.hsigmoid`);
        }
        return g.op('HardSigmoid', [x], { alpha: float(1 / 6), beta: float(0.5) }, `${name}.hsigmoid`);
      case 'hswish':
        if (opset >= 14) return g.op('HardSwish', [x], {}, `${name}.hswish`);
        return g.op('Mul', [x, g.op('HardSigmoid', [x], { alpha: float(1 / 6), beta: float(0.5) }, `${name}.hsigmoid`)], {}, `${name}.hswish`);
      default: throw new Error(`emit: unknown activation ${act as string}`);
    }
  };
  let wi = 0;
  for (const l of net.layers) {
    switch (l.kind) {
      case 'conv': {
        const w = weights[wi++];
        checkWeights(l, w);
        const attrs = {
          dilations: ints([1, 1]), group: int(l.groups), kernel_shape: ints([l.kernel, l.kernel]),
          pads: ints(convPads(l, opts.padding)), strides: ints([l.stride, l.stride]),
        };
        let y: string;
        if (l.bn && opts.bn === 'keep') {
          const wt = g.initializer(`${l.name}.weight`, weightShape(l), w.weight);
          const conv = g.op('Conv', [val(l.input), wt], attrs, `${l.name}.conv`);
          const bn = keptBatchNorm(w, l.outC);
          const p = (k: string, a: Float32Array) => g.initializer(`${l.name}.bn.${k}`, [l.outC], a);
          y = g.op('BatchNormalization', [conv, p('weight', bn.gamma), p('bias', bn.beta), p('running_mean', bn.mean), p('running_var', bn.variance)],
            { epsilon: float(bn.eps) }, `${l.name}.bn`);
        } else {
          const f = foldBatchNorm(w, l.outC);
          const wt = g.initializer(`${l.name}.weight`, weightShape(l), f.weight);
          const bt = g.initializer(`${l.name}.bias`, [l.outC], f.bias);
          y = g.op('Conv', [val(l.input), wt, bt], attrs, `${l.name}.conv`);
        }
        y = activation(y, l.act, l.name, w);
        g.valueInfo(y, ['N', l.outC, l.outH, l.outW]);
        names.set(l.output, y);
        break;
      }
      case 'linear': {
        const w = weights[wi++];
        checkWeights(l, w);
        const wt = g.initializer(`${l.name}.weight`, weightShape(l), w.weight);
        const bt = g.initializer(`${l.name}.bias`, [l.outF], w.bias);
        let y = g.op('Gemm', [val(l.input), wt, bt], { alpha: float(1), beta: float(1), transB: int(1) }, `${l.name}.gemm`);
        y = activation(y, l.act, l.name, w);
        names.set(l.output, y);
        break;
      }
      case 'add': names.set(l.output, g.op('Add', [val(l.a), val(l.b)], {}, l.name)); break;
      case 'scale': names.set(l.output, g.op('Mul', [val(l.s), val(l.x)], {}, `${l.name}.scale`)); break;
      case 'avgpool': names.set(l.output, g.op('GlobalAveragePool', [val(l.input)], {}, l.name)); break;
      case 'flatten': names.set(l.output, g.op('Flatten', [val(l.input)], { axis: int(1) }, l.name)); break;
      default: throw new Error(`emit: unknown layer ${(l as { kind: string }).kind}`);
    }
  }
  // name the final value `logits`
  g.node('Identity', [val(net.output)], [outputName], {}, { name: 'output' });
  g.output(outputName, ['N', net.classes]);
  const meta: Record<string, string> = {
    [BUILDER_KEYS.arch]: net.arch, [BUILDER_KEYS.width]: String(net.width), [BUILDER_KEYS.resolution]: String(net.resolution),
    [BUILDER_KEYS.classes]: String(net.classes), [BUILDER_KEYS.padding]: opts.padding, [BUILDER_KEYS.bn]: opts.bn, ...opts.metadata,
  };
  for (const [k, v] of Object.entries(meta)) g.setMetadata(k, v);
  return g.toModel();
}

function keptBatchNorm(w: LayerWeights, outC: number): BatchNorm {
  if (w.bn) {
    // conv bias (if any) moves into the running mean
    const mean = new Float32Array(outC);
    for (let o = 0; o < outC; o++) mean[o] = w.bn.mean[o] - w.bias[o];
    return { ...w.bn, mean };
  }
  // weights with BN already folded: an exact identity BN carrying the bias
  const eps = 1e-5;
  return {
    gamma: new Float32Array(outC).fill(Math.sqrt(1 + eps)), beta: w.bias.slice(),
    mean: new Float32Array(outC), variance: new Float32Array(outC).fill(1), eps,
  };
}

function checkWeights(l: WeightLayer, w: LayerWeights): void {
  const shape = weightShape(l);
  const n = shape.reduce((a, b) => a * b, 1);
  const o = shape[0];
  if (!w || w.weight.length !== n || w.bias.length !== o) {
    throw new Error(`${l.name}: weights have ${w?.weight.length} values and bias ${w?.bias.length}, expected [${shape}] and [${o}]`);
  }
}
