// The ONNX front end: reads the graph input, every node in graph order and the graph outputs, giving each ONNX
// tensor an abstract value (values.ts). Float nodes become expressions, quantized later by the QuantizeLinear
// that reads them (qdq.ts, lower/); QOperator nodes (qoperator.ts) and MaxPool (lower/max-pool.ts) become plan
// ops at once; constants and shape arithmetic fold (fold-constants.ts).
import {
  onnx, NodeProto, attr, attrFloat, attrInt, attrInts, attrString, describeNode, nhwcInputChain, valueInfoShape, zeroPadHW, DataType,
} from '../onnx/proto';
import { CompiledOutput, Dim } from './compiled-model';
import { Dtype } from '../plan';
import { CompileState } from './state';
import { broadcastDims, chw, convDims, layoutPreserving, matmulDims, reshapeDims } from './shapes';
import { Dims, Value, dequantizedConst, expr } from './values';
import { constantNode, constFromTensor, foldShapeOp } from './fold-constants';
import { readDequantizeLinear, readQuantizeLinear } from './qdq';
import { readQOperator } from './qoperator';
import { maxPool } from './lower/max-pool';
import { UnsupportedModelError } from './unsupported-model-error';

const ONNX_DOMAINS = new Set(['', 'ai.onnx', 'com.microsoft']);

/** Dims of a graph input / output: a name for each dimension that is not a fixed number. */
function shapeOf(v: onnx.IValueInfoProto): Dim[] {
  return valueInfoShape(v, (i) => (i === 0 ? 'N' : `d${i}`));
}

/**
 * The initializers as constants, and the one float image input: its name, ONNX shape and layout. `size`: the
 * [height, width] of an input whose H and W are not fixed.
 */
export function readGraphInput(s: CompileState, g: onnx.IGraphProto, size: () => [number, number] | undefined): { name: string; shape: Dim[]; layout: 'nchw' | 'nhwc' } {
  const inits = new Set<string>();
  for (const t of g.initializer ?? []) {
    inits.add(t.name ?? '');
    s.values.set(t.name ?? '', constFromTensor(t));
  }
  const graphInputs = (g.input ?? []).filter((i) => !inits.has(i.name ?? ''));
  if (graphInputs.length !== 1) {
    throw new UnsupportedModelError(`model has ${graphInputs.length} inputs (${graphInputs.map((i) => i.name).join(', ')}); expected exactly one float image input`);
  }
  const gi = graphInputs[0];
  const inShape = shapeOf(gi);
  if (gi.type?.tensorType?.elemType !== DataType.FLOAT) {
    throw new UnsupportedModelError(`input '${gi.name}' has type ${DataType[gi.type?.tensorType?.elemType ?? 0]}; expected float32`);
  }
  if (inShape.length !== 4) throw new UnsupportedModelError(`input '${gi.name}' has shape [${inShape}]; expected [N, C, H, W] (or [N, H, W, C] transposed to NCHW)`);
  // [N, H, W, C] transposed by the graph (tf2onnx's Keras exports): read as NCHW from here on, until the
  // Transpose(0, 3, 1, 2) makes it so
  const layout = nhwcInputChain(g, gi.name ?? '') ? 'nhwc' : 'nchw';
  if (layout === 'nhwc') s.nhwcValues.add(gi.name ?? '');
  const nchwShape = layout === 'nhwc' ? [inShape[0], inShape[3], inShape[1], inShape[2]] : inShape;
  const hw = size();
  const inDims = [1, ...nchwShape.slice(1).map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    if (i > 0 && hw) return hw[i - 1];
    throw new UnsupportedModelError(`input '${gi.name}' has shape [${inShape}]; C, H and W must be fixed numbers (for a dynamic height / width, give the size in the model's mnq.preprocess metadata or CompileOptions.inputSize)`);
  })];
  s.values.set(gi.name ?? '', { kind: 'input', dims: inDims });
  return { name: gi.name ?? '', shape: inShape, layout };
}

/** A graph output: the int8 tensor it dequantizes (through reshapes), and a Softmax after it. */
export function readGraphOutput(s: CompileState, o: onnx.IValueInfoProto): CompiledOutput {
  const name = o.name ?? '';
  let v = s.values.get(name);
  if (!v) throw new UnsupportedModelError(`graph output '${name}' is not produced by any node`);
  let softmax = false;
  let softmaxQuantization: CompiledOutput['softmaxQuantization'];
  let dims = v.dims;
  if (v.kind === 'expr' && (v.op === 'softmax' || v.op === 'qsoftmax' || v.op === 'dqsoftmax')) {
    softmax = true;
    if (v.op !== 'softmax') softmaxQuantization = { scale: v.attrs!.scale as number, zeroPoint: v.attrs!.zeroPoint as number };
    v = v.args[0];
  }
  while (v.kind === 'expr' && v.op === 'reshape') v = v.args[0];
  if ((v.kind === 'dq' || v.kind === 'q') && v.pad) throw new UnsupportedModelError(`graph output '${name}' is zero-padded by a Pad node; mnq folds such a Pad only into a Conv that reads it`);
  if (v.kind !== 'dq' && v.kind !== 'q') {
    const by = v.kind === 'expr' ? describeNode(v.node) : v.kind;
    throw new UnsupportedModelError(`graph output '${name}' (from ${by}) is not a DequantizeLinear of an int8 tensor (optionally reshaped / Softmax): it is computed in float`);
  }
  if ((s.tensors[v.id].dtype ?? Dtype.int8) !== Dtype.int8) {
    throw new UnsupportedModelError(`graph output '${name}' is an int16 tensor; mnq returns int8 outputs only (quantize the output to int8)`);
  }
  if (softmax) {
    const axis = (v.dims.length === 2 || dims.length === 2) ? 1 : -1;
    if (axis !== 1) throw new UnsupportedModelError(`graph output '${name}': Softmax is supported only on a [N, classes] output`);
  }
  const [c, h, w] = chw(dims, () => {
    throw new UnsupportedModelError(`graph output '${name}' has shape [${dims}]; expected [N, C] or [N, C, H, W]`);
  });
  let shape = shapeOf(o);
  if (shape.length !== dims.length) shape = ['N', ...dims.slice(1)];
  dims = dims.slice();
  return { name, shape, tensor: v.id, c, h, w, softmax, ...(softmaxQuantization ? { softmaxQuantization } : {}) };
}

/** Reads one node: sets the values of its outputs. */
export function readNode(s: CompileState, node: NodeProto): void {
  s.node = node;
  if (!ONNX_DOMAINS.has(node.domain ?? '')) s.fail(`operator domain '${node.domain}' is not supported`);
  const out = (v: Value, i = 0) => {
    const name = node.output?.[i];
    if (name) s.values.set(name, v);
  };
  const inp = node.input ?? [];
  const op = node.opType ?? '';
  if (inp.some((i) => s.nhwcValues.has(i))) {
    // the NHWC input: quantized and dequantized as it is, then transposed to NCHW (a no-op for the NHWC plan)
    const perm = op === 'Transpose' ? attrInts(node, 'perm', []) : [];
    if (op === 'Transpose' && perm.join() === '0,3,1,2') return out(s.get(inp[0]));
    if (op !== 'QuantizeLinear' && op !== 'DequantizeLinear' && op !== 'Identity') {
      s.fail(`the input is NHWC ([N, H, W, C]) and reaches ${op} before a Transpose to NCHW (perm [0, 3, 1, 2]); mnq reads NHWC images only through such a Transpose`);
    }
    for (const o of node.output ?? []) s.nhwcValues.add(o);
  }
  const padded = inp.findIndex((i) => { const v = s.values.get(i); return !!v && (v.kind === 'q' || v.kind === 'dq') && !!v.pad; });
  if (padded >= 0 && !(['QuantizeLinear', 'DequantizeLinear', 'Pad', 'Identity'].includes(op) || (op === 'Conv' && padded === 0))) {
    s.fail(`reads '${inp[padded]}', zero-padded by a Pad node; mnq folds such a Pad only into a Conv that reads it`);
  }
  switch (op) {
    case 'Identity': case 'Dropout': return out(s.get(inp[0]));
    case 'Constant': return out(constantNode(s, node));
    case 'QuantizeLinear': return out(readQuantizeLinear(s, node));
    case 'DequantizeLinear': return out(readDequantizeLinear(s, node));
    case 'Conv': return out(expr('conv', node, [s.get(inp[0]), s.get(inp[1], 'weights'), ...(inp[2] ? [s.get(inp[2], 'bias')] : [])], convDims(s, node, s.get(inp[0]).dims, s.get(inp[1]).dims)));
    case 'Relu': case 'Sigmoid': case 'Tanh': case 'HardSwish': case 'HardSigmoid': case 'LeakyRelu': case 'Clip':
      return out(unary(s, node));
    case 'Add': case 'Sub': case 'Mul': case 'Div': return out(binary(s, node));
    case 'GlobalAveragePool': {
      const x = s.get(inp[0]);
      if (x.dims.length !== 4) s.fail(`input has shape [${x.dims}], expected [N, C, H, W]`);
      return out(expr('gap', node, [x], [1, x.dims[1], 1, 1]));
    }
    case 'AveragePool': return out(averagePool(s, node));
    case 'Pad': return out(pad(s, node));
    case 'MaxPool': return out(maxPool(s, node));
    case 'Flatten': case 'Reshape': case 'Squeeze': case 'Unsqueeze': return out(reshape(s, node));
    case 'Shape': {
      const x = s.get(inp[0]);
      return out({ kind: 'const', data: Int32Array.from(x.dims), dtype: DataType.INT64, dims: [x.dims.length] });
    }
    case 'Gather': case 'Concat': case 'Cast': case 'Slice': return out(foldShapeOp(s, node));
    case 'MatMul': return out(expr('matmul', node, [s.get(inp[0]), s.get(inp[1], 'weights')], matmulDims(s, s.get(inp[0]).dims, s.get(inp[1]).dims)));
    case 'Gemm': return out(gemm(s, node));
    case 'Softmax': {
      const x = s.get(inp[0]);
      return out(expr('softmax', node, [x], x.dims));
    }
    case 'QLinearConv': case 'QLinearAdd': case 'QLinearMul': case 'QLinearGlobalAveragePool': case 'QLinearMatMul':
    case 'QLinearSigmoid': case 'QLinearLeakyRelu':
      return out(readQOperator(s, node));
    default:
      s.fail('operator is not supported by mnq (supported: int8 QDQ / QOperator MobileNet graphs: Conv, Add, Mul, GlobalAveragePool, MaxPool, MatMul, Gemm, activations, reshapes)');
  }
}

/** A float attribute that must be a finite number. */
function finiteAttr(s: CompileState, node: NodeProto, name: string, dflt: number): number {
  const v = attrFloat(node, name, dflt);
  if (!Number.isFinite(v)) s.fail(`attribute ${name} is ${v}; it must be a finite number`);
  return v;
}

function unary(s: CompileState, node: NodeProto): Value {
  const inp = node.input ?? [];
  const x = s.get(inp[0]);
  const op = node.opType ?? '';
  const attrs: Record<string, unknown> = {};
  if (op === 'Clip') {
    let lo = -Infinity, hi = Infinity;
    if (inp.length > 1 || !attr(node, 'min')) {
      if (inp[1]) lo = s.scalarOf(inp[1], 'min');
      if (inp[2]) hi = s.scalarOf(inp[2], 'max');
    } else {
      lo = attrFloat(node, 'min', -3.4028234663852886e38);
      hi = attrFloat(node, 'max', 3.4028234663852886e38);
    }
    if (Number.isNaN(lo) || Number.isNaN(hi)) s.fail(`min ${lo} / max ${hi}: a bound is NaN`);
    attrs.lo = lo;
    attrs.hi = hi;
  } else if (op === 'HardSigmoid') {
    attrs.alpha = finiteAttr(s, node, 'alpha', 0.2);
    attrs.beta = finiteAttr(s, node, 'beta', 0.5);
  } else if (op === 'LeakyRelu') {
    attrs.alpha = finiteAttr(s, node, 'alpha', 0.01);
  }
  return expr(op.toLowerCase(), node, [x], x.dims, attrs);
}

function binary(s: CompileState, node: NodeProto): Value {
  const inp = node.input ?? [];
  const a = s.get(inp[0]), b = s.get(inp[1]);
  if (a.kind === 'const' && b.kind === 'const') return foldShapeOp(s, node);
  const dims = broadcastDims(a.dims, b.dims) ?? s.fail(`cannot broadcast [${a.dims}] with [${b.dims}]`);
  return expr(node.opType!.toLowerCase(), node, [a, b], dims);
}

function averagePool(s: CompileState, node: NodeProto): Value {
  const x = s.get((node.input ?? [])[0]);
  const k = attrInts(node, 'kernel_shape', []);
  const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
  if (x.dims.length === 4 && k[0] === x.dims[2] && k[1] === x.dims[3] && pads.every((p) => p === 0) && attrString(node, 'auto_pad', 'NOTSET') !== 'SAME_UPPER') {
    return expr('gap', node, [x], [1, x.dims[1], 1, 1]);
  }
  s.fail(`only a global AveragePool (kernel = the whole ${x.dims.slice(2).join('x')} image, no padding) is supported; kernel is ${k.join('x')}`);
}

function reshape(s: CompileState, node: NodeProto): Value {
  const x = s.get((node.input ?? [])[0]);
  if (x.kind === 'const') return foldShapeOp(s, node);
  const dims: Dims = reshapeDims(s, node, x.dims);
  if (dims[0] !== 1) s.fail(`reshapes the batch dimension ([${x.dims}] -> [${dims}] at batch 1); only per-image reshapes are supported`);
  if (!layoutPreserving(x.dims, dims)) {
    s.fail(`reshape [${x.dims}] -> [${dims}] changes the memory order of an NHWC tensor; only reshapes of [N, C, 1, 1] / [N, C] are supported`);
  }
  if (x.kind === 'q') {
    const name = node.output?.[0];
    if (name) s.alias(x.id, name);
    return { kind: 'q', id: x.id, dims };
  }
  return expr('reshape', node, [x], dims);
}

function gemm(s: CompileState, node: NodeProto): Value {
  const inp = node.input ?? [];
  if (attrInt(node, 'transA', 0) !== 0) s.fail('transA = 1 is not supported');
  if (attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1) s.fail('alpha and beta must be 1');
  const a = s.get(inp[0]), b = s.get(inp[1], 'weights');
  const transB = attrInt(node, 'transB', 0);
  const n = transB ? b.dims[0] : b.dims[1];
  const args = [a, b, ...(inp[2] ? [s.get(inp[2], 'bias')] : [])];
  return expr('gemm', node, args, [a.dims[0], n], { transB });
}

/** A constant-0 Pad of H and W (Keras' ZeroPadding2D) of an int8 tensor: pending, for the Conv that reads it. */
function pad(s: CompileState, node: NodeProto): Value {
  const inp = node.input ?? [];
  const x = s.get(inp[0]);
  if (x.kind !== 'dq' || x.dims.length !== 4) s.fail('Pad is supported only on a DequantizeLinear output of an int8 [N, C, H, W] tensor, before a Conv');
  const num = (v: Value, what: string): number[] => {
    if (v.kind === 'const') return Array.from(v.data as ArrayLike<number | bigint>, Number);
    if (v.kind === 'qconst') return Array.from(dequantizedConst(v));
    s.fail(`${what} must be a constant`);
  };
  const pads = inp[1] ? num(s.get(inp[1]), 'pads') : attrInts(node, 'pads', []);
  const value = inp[2] ? num(s.get(inp[2]), 'constant_value') : [attrFloat(node, 'value', 0)];
  const mode = attrString(node, 'mode', 'constant');
  const tlbr = inp[3] ? null : zeroPadHW(mode, pads, value);
  if (!tlbr) {
    s.fail(`only a constant-0 Pad of height and width (pads [0, 0, t, l, 0, 0, b, r], t..r >= 0) is supported, got mode ${mode}, pads [${pads}], value ${value}`);
  }
  const [t, l, b, r] = tlbr;
  const prev = x.pad ?? [0, 0, 0, 0];
  const padding = [prev[0] + t, prev[1] + l, prev[2] + b, prev[3] + r];
  return { kind: 'dq', id: x.id, dims: [x.dims[0], x.dims[1], x.dims[2] + t + b, x.dims[3] + l + r], pad: padding };
}
