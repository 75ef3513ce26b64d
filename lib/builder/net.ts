// The graph-building API: a network is a list of layers over shaped values,
// built by NetBuilder (conv, depthwise conv with BN, activations, SE, add,
// pooling, classifier). It is pure description: no weights. emit.ts turns a
// Net plus weights into ONNX; counts come straight from the description.

export type Activation = 'none' | 'relu' | 'relu6' | 'hswish' | 'hsigmoid';

/** A value in the network: an NCHW feature map (h, w) or, after flatten, a vector (h = w = 0). */
export interface Value {
  id: number;
  c: number;
  h: number;
  w: number;
}

interface LayerBase {
  /** Readable layer name, torchvision-style, e.g. "features.3.conv.1". */
  name: string;
  output: number;
}

/** Convolution (optionally followed by batch norm) and activation. */
export interface ConvLayer extends LayerBase {
  kind: 'conv';
  input: number;
  inC: number;
  outC: number;
  kernel: number;
  stride: number;
  groups: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  /** Batch norm after the conv (then the conv itself has no bias); else the conv has a bias. */
  bn: boolean;
  act: Activation;
}

/** Fully connected layer on a flat vector, with bias and activation. */
export interface LinearLayer extends LayerBase {
  kind: 'linear';
  input: number;
  inF: number;
  outF: number;
  act: Activation;
}

export interface AddLayer extends LayerBase { kind: 'add'; a: number; b: number }
/** Channel-wise scale: x * s where s is N x C x 1 x 1 (the SE excitation). */
export interface ScaleLayer extends LayerBase { kind: 'scale'; x: number; s: number }
export interface PoolLayer extends LayerBase { kind: 'avgpool'; input: number }
export interface FlattenLayer extends LayerBase { kind: 'flatten'; input: number }

export type Layer = ConvLayer | LinearLayer | AddLayer | ScaleLayer | PoolLayer | FlattenLayer;
/** Layers that carry weights, in the order they appear. */
export type WeightLayer = ConvLayer | LinearLayer;

export interface NetInfo {
  arch: string;
  width: number;
  resolution: number;
  classes: number;
}

export interface Net extends NetInfo {
  inputChannels: number;
  values: Value[];
  layers: Layer[];
  input: number;
  output: number;
}

export function isWeightLayer(l: Layer): l is WeightLayer {
  return l.kind === 'conv' || l.kind === 'linear';
}

/**
 * Reference make_divisible (TF slim / torchvision `_make_divisible`): round v to
 * the nearest multiple of `divisor`, at least `minValue`, never below 90% of v.
 */
export function makeDivisible(v: number, divisor = 8, minValue?: number): number {
  const min = minValue ?? divisor;
  let nv = Math.max(min, Math.floor(Math.floor(v + divisor / 2) / divisor) * divisor);
  if (nv < 0.9 * v) nv += divisor;
  return nv;
}

/** Output size of a "same"-style convolution (odd kernel, pad (k-1)/2 or TF SAME): ceil(in / stride). */
export function convOutSize(inSize: number, stride: number): number {
  return Math.ceil(inSize / stride);
}

export interface ConvOptions {
  kernel?: number;
  stride?: number;
  groups?: number;
  /** Batch norm after the conv (default true); false gives a conv with bias. */
  bn?: boolean;
  act?: Activation;
}

/** Builds a Net layer by layer, tracking shapes. */
export class NetBuilder {
  private readonly values: Value[] = [];
  private readonly layers: Layer[] = [];
  private readonly inputId: number;

  constructor(readonly info: NetInfo, readonly inputChannels = 3) {
    this.inputId = this.value(inputChannels, info.resolution, info.resolution).id;
  }

  get input(): Value {
    return this.values[this.inputId];
  }

  private value(c: number, h: number, w: number): Value {
    const v = { id: this.values.length, c, h, w };
    this.values.push(v);
    return v;
  }

  private requireMap(x: Value, what: string): void {
    if (x.h === 0) throw new Error(`${what}: input is a flat vector, expected a feature map`);
  }

  conv(name: string, x: Value, outC: number, o: ConvOptions = {}): Value {
    this.requireMap(x, name);
    const kernel = o.kernel ?? 1;
    const stride = o.stride ?? 1;
    const groups = o.groups ?? 1;
    if (x.c % groups !== 0 || outC % groups !== 0) {
      throw new Error(`${name}: groups ${groups} must divide input channels ${x.c} and output channels ${outC}`);
    }
    if (kernel % 2 !== 1) throw new Error(`${name}: kernel must be odd, got ${kernel}`);
    const y = this.value(outC, convOutSize(x.h, stride), convOutSize(x.w, stride));
    this.layers.push({
      kind: 'conv', name, input: x.id, output: y.id, inC: x.c, outC, kernel, stride, groups,
      inH: x.h, inW: x.w, outH: y.h, outW: y.w, bn: o.bn ?? true, act: o.act ?? 'none',
    });
    return y;
  }

  /** Depthwise convolution (groups = channels) with BN and activation. */
  dwconv(name: string, x: Value, kernel: number, stride: number, act: Activation): Value {
    return this.conv(name, x, x.c, { kernel, stride, groups: x.c, act });
  }

  /** Pointwise (1x1) convolution with BN and activation. */
  pwconv(name: string, x: Value, outC: number, act: Activation): Value {
    return this.conv(name, x, outC, { act });
  }

  add(name: string, a: Value, b: Value): Value {
    if (a.c !== b.c || a.h !== b.h || a.w !== b.w) {
      throw new Error(`${name}: cannot add ${a.c}x${a.h}x${a.w} and ${b.c}x${b.h}x${b.w}`);
    }
    const y = this.value(a.c, a.h, a.w);
    this.layers.push({ kind: 'add', name, a: a.id, b: b.id, output: y.id });
    return y;
  }

  /** Global average pooling to C x 1 x 1. */
  avgpool(name: string, x: Value): Value {
    this.requireMap(x, name);
    const y = this.value(x.c, 1, 1);
    this.layers.push({ kind: 'avgpool', name, input: x.id, output: y.id });
    return y;
  }

  /**
   * Squeeze-and-excitation (MobileNetV3): avgpool, 1x1 conv to `squeeze` channels
   * with bias and ReLU, 1x1 conv back with bias and h-sigmoid, channel-wise scale.
   */
  se(name: string, x: Value, squeeze: number): Value {
    const p = this.avgpool(`${name}.avgpool`, x);
    const s1 = this.conv(`${name}.fc1`, p, squeeze, { bn: false, act: 'relu' });
    const s2 = this.conv(`${name}.fc2`, s1, x.c, { bn: false, act: 'hsigmoid' });
    const y = this.value(x.c, x.h, x.w);
    this.layers.push({ kind: 'scale', name, x: x.id, s: s2.id, output: y.id });
    return y;
  }

  flatten(name: string, x: Value): Value {
    const y = this.value(x.c * Math.max(1, x.h) * Math.max(1, x.w), 0, 0);
    this.layers.push({ kind: 'flatten', name, input: x.id, output: y.id });
    return y;
  }

  /** Fully connected layer with bias (flattens a 1x1 feature map first). */
  linear(name: string, x: Value, outF: number, act: Activation = 'none'): Value {
    let v = x;
    if (v.h !== 0) {
      if (v.h !== 1 || v.w !== 1) throw new Error(`${name}: linear layer needs a pooled (1x1) input, got ${v.h}x${v.w}`);
      v = this.flatten(`${name}.flatten`, v);
    }
    const y = this.value(outF, 0, 0);
    this.layers.push({ kind: 'linear', name, input: v.id, output: y.id, inF: v.c, outF, act });
    return y;
  }

  /** Classifier head: global average pool then a linear layer to the class count. */
  classifier(name: string, x: Value): Value {
    const p = x.h === 0 || (x.h === 1 && x.w === 1) ? x : this.avgpool(`${name}.avgpool`, x);
    return this.linear(name, p, this.info.classes);
  }

  finish(output: Value): Net {
    return {
      ...this.info, inputChannels: this.inputChannels,
      values: this.values.slice(), layers: this.layers.slice(), input: this.inputId, output: output.id,
    };
  }
}

export function weightLayers(net: Net): WeightLayer[] {
  return net.layers.filter(isWeightLayer);
}

/** The weight tensor shape of a layer: [O, I/groups, k, k] or [O, I]. */
export function weightShape(l: WeightLayer): number[] {
  return l.kind === 'conv' ? [l.outC, l.inC / l.groups, l.kernel, l.kernel] : [l.outF, l.inF];
}

export interface LayerCount {
  name: string;
  /** 'scale' is the SE channel-wise multiply (no weights, one multiply per element). */
  type: 'conv' | 'dwconv' | 'linear' | 'scale';
  weightShape: number[];
  stride: number;
  groups: number;
  act: Activation;
  input: number[];
  output: number[];
  params: number;
  macs: number;
}

/**
 * Counting convention: params = weights + biases of every conv and linear layer with
 * batch norm folded into the conv biases; macs = multiply-accumulates of every conv
 * and linear layer plus the SE channel-scale multiplies (one per element), for one
 * image. Activations, pooling, residual adds are not counted.
 */
export interface Counts {
  params: number;
  macs: number;
  /** The conv and linear part of macs. */
  convLinearMacs: number;
  /** The SE channel-scale part of macs. */
  seScaleMacs: number;
  layers: LayerCount[];
}

export function layerCount(l: WeightLayer): LayerCount {
  const shape = weightShape(l);
  const w = shape.reduce((a, b) => a * b, 1);
  if (l.kind === 'conv') {
    return {
      name: l.name, type: l.groups > 1 && l.groups === l.inC ? 'dwconv' : 'conv', weightShape: shape,
      stride: l.stride, groups: l.groups, act: l.act,
      input: [l.inC, l.inH, l.inW], output: [l.outC, l.outH, l.outW],
      params: w + l.outC, macs: w * l.outH * l.outW,
    };
  }
  return {
    name: l.name, type: 'linear', weightShape: shape, stride: 1, groups: 1, act: l.act,
    input: [l.inF], output: [l.outF], params: w + l.outF, macs: w,
  };
}

export function countNet(net: Net): Counts {
  const layers: LayerCount[] = [];
  for (const l of net.layers) {
    if (isWeightLayer(l)) layers.push(layerCount(l));
    else if (l.kind === 'scale') {
      const v = net.values[l.x];
      layers.push({
        name: l.name, type: 'scale', weightShape: [], stride: 1, groups: 1, act: 'none',
        input: [v.c, v.h, v.w], output: [v.c, v.h, v.w], params: 0, macs: v.c * v.h * v.w,
      });
    }
  }
  const sum = (f: (l: LayerCount) => boolean) => layers.filter(f).reduce((a, l) => a + l.macs, 0);
  const convLinearMacs = sum((l) => l.type !== 'scale');
  const seScaleMacs = sum((l) => l.type === 'scale');
  return {
    params: layers.reduce((a, l) => a + l.params, 0),
    macs: convLinearMacs + seScaleMacs, convLinearMacs, seScaleMacs, layers,
  };
}
