// ONNX int8 graph -> execution plan (lib/plan.ts).
//
// One pass over the nodes in graph order evaluates every value abstractly:
//   q      an int8 tensor of the plan (output of QuantizeLinear / a QLinear* op)
//   dq     the float view DequantizeLinear(q) of one
//   const  a constant (initializer, Constant node, or folded shape arithmetic)
//   qconst DequantizeLinear(constant int8/uint8/int32 data): weights and biases
//   expr   a float computation not yet quantized (Conv, Add, Relu, ...)
//   input  the float graph input
// Each QuantizeLinear then lowers the float expression it quantizes into plan
// ops, matching the node groups ONNX Runtime fuses (QDQ -> QLinearConv,
// QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearMatMul; a Relu /
// Clip before Q folds into the clamp, as ORT's Relu/ClipQuantFusion does when
// the Q range makes it redundant and as Q(clip(y)) == clamp(Q(y)) otherwise;
// elementwise float functions between DQ and Q become tables). QOperator nodes
// map to plan ops directly. uint8 tensors are shifted to int8 (data - 128,
// zero point - 128), which is exact for every op but Add and Mul: ORT's QLinearAdd
// does float arithmetic on the uint8 values and its QLinearMul adds the uint8 zero
// point in float, so a uint8 add or mul carries addOffset = 128.
import {
  onnx, NodeProto, TensorProto, attr, attrFloat, attrInt, attrInts, attrString, describeNode, dims as tensorDims, nhwcInputChain, zeroPadHW,
  tensorData, toNum, DataType,
} from '../onnx/proto';
import { PlanDesc, PlanOp, PlanOpType, PlanTensor, UnaryFn, UnaryParams, makeOp } from '../plan';
import { Elementwise, asUnaryParams, describeElementwise, exactEvaluator } from './activation';
import { planMemory } from './memory';
import { buildTable, f32, quantize } from './quant';
import { METADATA_KEYS, parsePreprocess } from '../image/preprocess';

/** An error in compiling a model: names the node, its op type and what is missing. */
export class UnsupportedModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedModelError';
  }
}

export interface CompileOptions {
  /**
   * ONNX names of int8 tensors (QuantizeLinear / QLinear* outputs, or the
   * DequantizeLinear outputs reading them) to keep alive and return after the
   * model outputs, or 'all' for every int8 tensor (no fusion then).
   */
  keep?: string[] | 'all';
  /**
   * [height, width] of the input when the model leaves them dynamic. Default: the `size` of the
   * preprocessing in the model's metadata (`mnq.preprocess`, as `mnq calibrate` writes it).
   */
  inputSize?: [number, number];
}

export type Dim = number | string;

export interface CompiledInput {
  name: string;
  shape: Dim[]; // ONNX shape, batch first: [N, C, H, W], or [N, H, W, C] when layout is 'nhwc'
  /**
   * 'nhwc': the graph takes [N, H, W, C] images and transposes them to NCHW (Transpose perm [0, 3, 1, 2],
   * before or after the input's QuantizeLinear / DequantizeLinear), as tf2onnx writes Keras models;
   * the plan's input is NHWC in either case (its kernels' layout), so that Transpose costs nothing.
   */
  layout: 'nchw' | 'nhwc';
  c: number;
  h: number;
  w: number;
  scale: number; // QuantizeLinear of the input
  zeroPoint: number; // int8 domain
}

export interface CompiledOutput {
  name: string;
  shape: Dim[]; // ONNX shape, batch first
  tensor: number; // plan tensor id
  /** The ONNX layout of one image's output: [c, h, w]; when h * w > 1 the plan's NHWC data must be transposed. */
  c: number;
  h: number;
  w: number;
  /** The graph applies Softmax after the final DequantizeLinear. */
  softmax: boolean;
  /**
   * The graph quantizes that Softmax again (DQ -> Softmax -> Q [-> DQ], as ONNX Runtime's quantizer
   * writes a Softmax): its QuantizeLinear's parameters. ORT computes this Softmax in float32 between
   * the DQ and the Q, and so does mnq's output stage (lib/model.ts); the plan ends at the logits.
   */
  softmaxQuantization?: { scale: number; zeroPoint: number };
}

export interface CompiledModel {
  plan: PlanDesc;
  input: CompiledInput;
  outputs: CompiledOutput[];
  /**
   * Kept intermediate tensors (CompileOptions.keep), in plan order, after the outputs in plan.outputs.
   * `pieces`: the plan stores the tensor piece-major (ONNX channel c * pieces + j at j * C + c, see
   * PlanOp.inputPieces); readers of the kept data restore the ONNX order.
   */
  kept: { name: string; tensor: number; pieces?: number }[];
}

// ------------------------------------------------------------------ values
type Dims = number[]; // ONNX dims at batch 1

/**
 * `pad` [top, left, bottom, right]: the tensor zero-padded spatially (a constant-0 Pad of a DequantizeLinear,
 * = padding with the zero point), dims included; only a Conv may read it (the pad joins its own).
 */
interface QVal { kind: 'q'; id: number; dims: Dims; pad?: number[] }
interface DQVal { kind: 'dq'; id: number; dims: Dims; pad?: number[] }
interface ConstVal { kind: 'const'; data: Float32Array | Int32Array | Int8Array | Uint8Array | Float64Array; dtype: number; dims: Dims }
interface QConstVal {
  kind: 'qconst';
  data: Int8Array | Int32Array; // int8 (uint8 shifted) or int32 (bias)
  int32: boolean;
  scale: Float32Array; // [1] or [dims[axis]]
  zeroPoint: Int32Array; // int8 domain, same length as scale
  axis: number;
  dims: Dims;
  node: NodeProto;
}
interface ExprVal { kind: 'expr'; op: string; args: Value[]; node: NodeProto; dims: Dims; attrs?: Record<string, unknown> }
interface InputVal { kind: 'input'; dims: Dims }
type Value = QVal | DQVal | ConstVal | QConstVal | ExprVal | InputVal;

interface TensorInfo { dims: Dims; names: string[] }

const ONNX_DOMAINS = new Set(['', 'ai.onnx', 'com.microsoft']);

class Compiler {
  private values = new Map<string, Value>();
  private tensors: PlanTensor[] = [];
  private info: TensorInfo[] = [];
  private ops: PlanOp[] = [];
  private inputId = -1;
  /** values that still hold the NHWC graph input in ONNX terms (their dims are kept NCHW) */
  private nhwcValues = new Set<string>();
  private byName = new Map<string, number>();
  private node!: NodeProto;

  constructor(private model: onnx.ModelProto, private options: CompileOptions) {}

  // ------------------------------------------------------------ helpers
  private fail(what: string, node: NodeProto = this.node): never {
    throw new UnsupportedModelError(`${node ? describeNode(node) : 'model'}: ${what}`);
  }

  private get(name: string | null | undefined, what = 'input'): Value {
    if (!name) this.fail(`${what} is missing`);
    const v = this.values.get(name);
    if (!v) this.fail(`${what} '${name}' is not produced by any earlier node, initializer or graph input`);
    return v;
  }

  private optional(name: string | null | undefined): Value | null {
    return name ? this.get(name) : null;
  }

  private constOf(name: string | null | undefined, what: string): ConstVal {
    const v = this.get(name, what);
    if (v.kind !== 'const') this.fail(`${what} '${name}' must be a constant (initializer)`);
    return v;
  }

  private scalarOf(name: string | null | undefined, what: string): number {
    const c = this.constOf(name, what);
    if (c.data.length !== 1) this.fail(`${what} '${name}' must be a scalar (per-tensor), has ${c.data.length} values`);
    return Number(c.data[0]);
  }

  /** Zero point (int8 domain) and whether the tensor type is uint8. */
  private zeroPointOf(name: string | null | undefined, what: string): { zp: number; uint8: boolean } {
    if (!name) return { zp: -128, uint8: true }; // ONNX default: uint8 zero point 0
    const c = this.constOf(name, what);
    if (c.data.length !== 1) this.fail(`${what} '${name}' must be a scalar, has ${c.data.length} values`);
    if (c.dtype === DataType.UINT8) return { zp: Number(c.data[0]) - 128, uint8: true };
    if (c.dtype === DataType.INT8) return { zp: Number(c.data[0]), uint8: false };
    this.fail(`${what} '${name}' has type ${DataType[c.dtype]}; only int8 and uint8 activations are supported`);
  }

  private newTensor(name: string, dims: Dims, scale: number, zeroPoint: number): number {
    const [c, h, w] = chw(dims, () => this.fail(`tensor '${name}' has shape [${dims}], expected [1, C] or [1, C, H, W]`));
    if (!(scale > 0) || !Number.isFinite(scale)) this.fail(`tensor '${name}' has scale ${scale}; expected a positive finite number`);
    const id = this.tensors.length;
    this.tensors.push({ name, h, w, c, scale: f32(scale), zeroPoint, offset: 0 });
    this.info.push({ dims, names: [name] });
    this.byName.set(name, id);
    return id;
  }

  private alias(id: number, name: string): void {
    this.info[id].names.push(name);
    if (!this.byName.has(name)) this.byName.set(name, id);
  }

  private nodeName(): string {
    return this.node.name || this.node.output?.[0] || this.node.opType || '?';
  }

  // ------------------------------------------------------------ entry
  compile(): CompiledModel {
    const g = this.model.graph!;
    const inits = new Set<string>();
    for (const t of g.initializer ?? []) {
      inits.add(t.name ?? '');
      this.values.set(t.name ?? '', this.constFromTensor(t));
    }
    const graphInputs = (g.input ?? []).filter((i) => !inits.has(i.name ?? ''));
    if (graphInputs.length !== 1) {
      throw new UnsupportedModelError(`model has ${graphInputs.length} inputs (${graphInputs.map((i) => i.name).join(', ')}); expected exactly one float image input`);
    }
    const gi = graphInputs[0];
    const inShape = valueInfoShape(gi);
    if (gi.type?.tensorType?.elemType !== DataType.FLOAT) {
      throw new UnsupportedModelError(`input '${gi.name}' has type ${DataType[gi.type?.tensorType?.elemType ?? 0]}; expected float32`);
    }
    if (inShape.length !== 4) throw new UnsupportedModelError(`input '${gi.name}' has shape [${inShape}]; expected [N, C, H, W] (or [N, H, W, C] transposed to NCHW)`);
    // [N, H, W, C] transposed by the graph (tf2onnx's Keras exports): read as NCHW from here on, until the
    // Transpose(0, 3, 1, 2) makes it so
    const layout = nhwcInputChain(g, gi.name ?? '') ? 'nhwc' : 'nchw';
    if (layout === 'nhwc') this.nhwcValues.add(gi.name ?? '');
    const nchwShape = layout === 'nhwc' ? [inShape[0], inShape[3], inShape[1], inShape[2]] : inShape;
    const size = this.options.inputSize ?? metadataInputSize(this.model);
    const inDims = [1, ...nchwShape.slice(1).map((d, i) => {
      if (typeof d === 'number' && d > 0) return d;
      if (i > 0 && size) return size[i - 1];
      throw new UnsupportedModelError(`input '${gi.name}' has shape [${inShape}]; C, H and W must be fixed numbers (for a dynamic height / width, give the size in the model's mnq.preprocess metadata or CompileOptions.inputSize)`);
    })];
    this.values.set(gi.name ?? '', { kind: 'input', dims: inDims });

    for (const node of g.node ?? []) {
      this.node = node;
      if (!ONNX_DOMAINS.has(node.domain ?? '')) this.fail(`operator domain '${node.domain}' is not supported`);
      this.visit(node);
    }

    if (this.inputId < 0) throw new UnsupportedModelError(`input '${gi.name}' is never quantized (no QuantizeLinear reads it): not an int8 model`);

    const outputs: CompiledOutput[] = [];
    for (const o of g.output ?? []) outputs.push(this.output(o));

    const keepAll = this.options.keep === 'all';
    const kept: CompiledModel['kept'] = [];
    if (keepAll) {
      for (const op of this.ops) kept.push({ name: this.tensors[op.output].name, tensor: op.output });
    } else {
      for (const name of this.options.keep ?? []) {
        const id = this.byName.get(name);
        if (id === undefined) throw new UnsupportedModelError(`cannot keep '${name}': not an int8 tensor of the model`);
        kept.push({ name, tensor: id });
      }
    }

    const plan: PlanDesc = {
      tensors: this.tensors,
      ops: this.ops,
      input: this.inputId,
      outputs: [...outputs.map((o) => o.tensor), ...kept.map((k) => k.tensor)],
      arenaBytes: 0,
    };
    const pieceMajor = pieceMajorInputs(plan, new Set(outputs.map((o) => o.tensor)));
    for (const k of kept) if (pieceMajor.has(k.tensor)) k.pieces = pieceMajor.get(k.tensor);
    if (!keepAll) fuseActivations(plan);
    const remap = compact(plan);
    for (const o of outputs) o.tensor = remap[o.tensor];
    for (const k of kept) k.tensor = remap[k.tensor];
    planMemory(plan);

    const it = plan.tensors[plan.input];
    return {
      plan,
      input: { name: gi.name ?? '', shape: inShape, layout, c: it.c, h: it.h, w: it.w, scale: it.scale, zeroPoint: it.zeroPoint },
      outputs,
      kept,
    };
  }

  private output(o: onnx.IValueInfoProto): CompiledOutput {
    const name = o.name ?? '';
    let v = this.values.get(name);
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
    if (softmax) {
      const axis = (v.dims.length === 2 || dims.length === 2) ? 1 : -1;
      if (axis !== 1) throw new UnsupportedModelError(`graph output '${name}': Softmax is supported only on a [N, classes] output`);
    }
    const [c, h, w] = chw(dims, () => {
      throw new UnsupportedModelError(`graph output '${name}' has shape [${dims}]; expected [N, C] or [N, C, H, W]`);
    });
    let shape = valueInfoShape(o);
    if (shape.length !== dims.length) shape = ['N', ...dims.slice(1)];
    dims = dims.slice();
    return { name, shape, tensor: v.id, c, h, w, softmax, ...(softmaxQuantization ? { softmaxQuantization } : {}) };
  }

  private constFromTensor(t: TensorProto): ConstVal {
    const d = tensorDims(t);
    let data: ConstVal['data'];
    try {
      data = tensorData(t);
    } catch (e) {
      throw new UnsupportedModelError(`initializer '${t.name}': ${(e as Error).message}`);
    }
    return { kind: 'const', data, dtype: t.dataType ?? 0, dims: d };
  }

  // ------------------------------------------------------------ nodes
  private visit(node: NodeProto): void {
    const out = (v: Value, i = 0) => {
      const name = node.output?.[i];
      if (name) this.values.set(name, v);
    };
    const inp = node.input ?? [];
    const op = node.opType ?? '';
    if (inp.some((i) => this.nhwcValues.has(i))) {
      // the NHWC input: quantized and dequantized as it is, then transposed to NCHW (a no-op for the NHWC plan)
      const perm = op === 'Transpose' ? attrInts(node, 'perm', []) : [];
      if (op === 'Transpose' && perm.join() === '0,3,1,2') return out(this.get(inp[0]));
      if (op !== 'QuantizeLinear' && op !== 'DequantizeLinear' && op !== 'Identity') {
        this.fail(`the input is NHWC ([N, H, W, C]) and reaches ${op} before a Transpose to NCHW (perm [0, 3, 1, 2]); mnq reads NHWC images only through such a Transpose`);
      }
      for (const o of node.output ?? []) this.nhwcValues.add(o);
    }
    const padded = inp.findIndex((i) => { const v = this.values.get(i); return !!v && (v.kind === 'q' || v.kind === 'dq') && !!v.pad; });
    if (padded >= 0 && !(['QuantizeLinear', 'DequantizeLinear', 'Pad', 'Identity'].includes(op) || (op === 'Conv' && padded === 0))) {
      this.fail(`reads '${inp[padded]}', zero-padded by a Pad node; mnq folds such a Pad only into a Conv that reads it`);
    }
    switch (op) {
      case 'Identity': case 'Dropout': return out(this.get(inp[0]));
      case 'Constant': return out(this.constantNode(node));
      case 'QuantizeLinear': return out(this.quantizeLinear(node));
      case 'DequantizeLinear': return out(this.dequantizeLinear(node));
      case 'Conv': return out(this.expr('conv', node, [this.get(inp[0]), this.get(inp[1], 'weights'), ...(inp[2] ? [this.get(inp[2], 'bias')] : [])], this.convDims(node, this.get(inp[0]).dims, this.get(inp[1]).dims)));
      case 'Relu': case 'Sigmoid': case 'Tanh': case 'HardSwish': case 'HardSigmoid': case 'LeakyRelu': case 'Clip':
        return out(this.unary(node));
      case 'Add': case 'Sub': case 'Mul': case 'Div': return out(this.binary(node));
      case 'GlobalAveragePool': {
        const x = this.get(inp[0]);
        if (x.dims.length !== 4) this.fail(`input has shape [${x.dims}], expected [N, C, H, W]`);
        return out(this.expr('gap', node, [x], [1, x.dims[1], 1, 1]));
      }
      case 'AveragePool': return out(this.averagePool(node));
      case 'Pad': return out(this.pad(node));
      case 'MaxPool': return out(this.maxPool(node));
      case 'Flatten': case 'Reshape': case 'Squeeze': case 'Unsqueeze': return out(this.reshape(node));
      case 'Shape': {
        const x = this.get(inp[0]);
        return out({ kind: 'const', data: Int32Array.from(x.dims), dtype: DataType.INT64, dims: [x.dims.length] });
      }
      case 'Gather': case 'Concat': case 'Cast': case 'Slice': return out(this.foldShapeOp(node));
      case 'MatMul': return out(this.expr('matmul', node, [this.get(inp[0]), this.get(inp[1], 'weights')], this.matmulDims(this.get(inp[0]).dims, this.get(inp[1]).dims)));
      case 'Gemm': return out(this.gemm(node));
      case 'Softmax': {
        const x = this.get(inp[0]);
        return out(this.expr('softmax', node, [x], x.dims));
      }
      case 'QLinearConv': return out(this.qlinearConv(node));
      case 'QLinearAdd': case 'QLinearMul': return out(this.qlinearBinary(node));
      case 'QLinearGlobalAveragePool': return out(this.qlinearGap(node));
      case 'QLinearMatMul': return out(this.qlinearMatMul(node));
      case 'QLinearSigmoid': case 'QLinearLeakyRelu': return out(this.qlinearUnary(node));
      default:
        this.fail('operator is not supported by mnq (supported: int8 QDQ / QOperator MobileNet graphs: Conv, Add, Mul, GlobalAveragePool, MaxPool, MatMul, Gemm, activations, reshapes)');
    }
  }

  private expr(op: string, node: NodeProto, args: Value[], dims: Dims, attrs?: Record<string, unknown>): ExprVal {
    return { kind: 'expr', op, args, node, dims, attrs };
  }

  private constantNode(node: NodeProto): ConstVal {
    const t = attr(node, 'value')?.t;
    if (t) return this.constFromTensor(t);
    const f = attr(node, 'value_float')?.f;
    if (f !== undefined) return { kind: 'const', data: Float32Array.of(f), dtype: DataType.FLOAT, dims: [] };
    const ints = attr(node, 'value_ints')?.ints;
    if (ints && ints.length) return { kind: 'const', data: Int32Array.from(ints), dtype: DataType.INT64, dims: [ints.length] };
    const i = attr(node, 'value_int')?.i;
    if (i !== undefined) return { kind: 'const', data: Int32Array.of(i), dtype: DataType.INT64, dims: [] };
    this.fail('Constant without a supported value attribute (value, value_float, value_int, value_ints)');
  }

  private quantizeLinear(node: NodeProto): Value {
    const inp = node.input ?? [];
    const x = this.get(inp[0]);
    const scale = this.scalarOf(inp[1], 'y_scale');
    const { zp, uint8 } = this.zeroPointOf(inp[2], 'y_zero_point');
    const name = node.output?.[0] ?? this.nodeName();
    if (x.kind === 'input') {
      if (this.inputId >= 0) this.fail('the input is quantized twice; expected one QuantizeLinear of the input');
      this.inputId = this.newTensor(name, x.dims, scale, zp);
      return { kind: 'q', id: this.inputId, dims: x.dims };
    }
    if (x.kind === 'const' || x.kind === 'qconst') this.fail('quantizing a constant is not supported');
    if (x.kind === 'q') this.fail('input is already quantized');
    if (x.kind === 'expr' && x.op === 'softmax') {
      // Q(Softmax(DQ(logits))): computed after the plan, at the output (see CompiledOutput.softmaxQuantization).
      return { ...x, op: 'qsoftmax', attrs: { scale: f32(scale), zeroPoint: zp } };
    }
    if (x.kind === 'dq' && x.pad) {
      // DQ → Pad → Q with the same parameters (ORT's quantizer writes Pad so): the padded int8 tensor, virtually
      const t = this.tensors[x.id];
      if (f32(scale) !== t.scale || zp !== t.zeroPoint) this.fail('quantizes a Pad output with other parameters than its input; only the same scale and zero point are supported');
      return { kind: 'q', id: x.id, dims: x.dims, pad: x.pad };
    }
    const id = this.lower(x, scale, zp, name, uint8);
    return { kind: 'q', id, dims: x.dims };
  }

  private dequantizeLinear(node: NodeProto): Value {
    const inp = node.input ?? [];
    const x = this.get(inp[0]);
    if (x.kind === 'q') {
      const scale = this.scalarOf(inp[1], 'x_scale');
      const { zp } = this.zeroPointOf(inp[2] || null, 'x_zero_point');
      const t = this.tensors[x.id];
      if (f32(scale) !== t.scale || zp !== t.zeroPoint) {
        this.fail(`dequantizes '${t.name}' with scale ${scale} / zero point ${zp}, but it was quantized with ${t.scale} / ${t.zeroPoint}; mismatched Q/DQ pairs are not supported`);
      }
      if (x.pad) return { kind: 'dq', id: x.id, dims: x.dims, pad: x.pad };
      if (node.output?.[0]) this.alias(x.id, node.output[0]);
      return { kind: 'dq', id: x.id, dims: x.dims };
    }
    if (x.kind === 'const') return this.quantizedConst(node, x, inp[1], inp[2]);
    if (x.kind === 'expr' && x.op === 'qsoftmax') {
      const scale = this.scalarOf(inp[1], 'x_scale');
      const { zp } = this.zeroPointOf(inp[2] || null, 'x_zero_point');
      if (f32(scale) !== x.attrs!.scale || zp !== x.attrs!.zeroPoint) this.fail('dequantizes a quantized Softmax with other parameters than its QuantizeLinear');
      return { ...x, op: 'dqsoftmax' };
    }
    this.fail(`input '${inp[0]}' is neither an int8 tensor nor a constant`);
  }

  private quantizedConst(node: NodeProto, x: ConstVal, scaleName?: string | null, zpName?: string | null, axisOverride?: number): QConstVal {
    const scaleC = this.constOf(scaleName, 'scale');
    const axisAttr = axisOverride ?? attrInt(node, 'axis', 1);
    const rank = x.dims.length;
    const axis = scaleC.data.length === 1 ? 0 : axisAttr < 0 ? axisAttr + rank : axisAttr;
    if (scaleC.data.length !== 1 && scaleC.data.length !== x.dims[axis]) {
      this.fail(`scale has ${scaleC.data.length} values; expected 1 or ${x.dims[axis]} (dimension ${axis} of [${x.dims}])`);
    }
    const scale = Float32Array.from(scaleC.data as ArrayLike<number>);
    let zeroPoint = new Int32Array(scale.length);
    let data: Int8Array | Int32Array;
    if (x.dtype === DataType.INT32) {
      data = new Int32Array(x.data as Int32Array);
      if (zpName) {
        const z = this.constOf(zpName, 'zero point');
        if (Array.from(z.data as ArrayLike<number>).some((v) => v !== 0)) this.fail('int32 (bias) zero point must be 0');
      }
      return { kind: 'qconst', data, int32: true, scale, zeroPoint, axis, dims: x.dims, node };
    }
    const shift = x.dtype === DataType.UINT8 ? 128 : x.dtype === DataType.INT8 ? 0 : NaN;
    if (Number.isNaN(shift)) this.fail(`quantized constant has type ${DataType[x.dtype]}; expected int8, uint8 or int32`);
    const src = x.data as ArrayLike<number>;
    const q = new Int8Array(src.length);
    for (let i = 0; i < src.length; i++) q[i] = src[i] - shift;
    data = q;
    if (zpName) {
      const z = this.constOf(zpName, 'zero point');
      if (z.data.length !== scale.length) this.fail(`zero point has ${z.data.length} values, scale has ${scale.length}`);
      zeroPoint = Int32Array.from(z.data as ArrayLike<number>, (v) => v - shift);
    } else {
      zeroPoint.fill(-shift);
    }
    return { kind: 'qconst', data, int32: false, scale, zeroPoint, axis, dims: x.dims, node };
  }

  private unary(node: NodeProto): Value {
    const inp = node.input ?? [];
    const x = this.get(inp[0]);
    const op = node.opType ?? '';
    const attrs: Record<string, unknown> = {};
    if (op === 'Clip') {
      let lo = -Infinity, hi = Infinity;
      if (inp.length > 1 || !attr(node, 'min')) {
        if (inp[1]) lo = this.scalarOf(inp[1], 'min');
        if (inp[2]) hi = this.scalarOf(inp[2], 'max');
      } else {
        lo = attrFloat(node, 'min', -3.4028234663852886e38);
        hi = attrFloat(node, 'max', 3.4028234663852886e38);
      }
      attrs.lo = lo;
      attrs.hi = hi;
    } else if (op === 'HardSigmoid') {
      attrs.alpha = attrFloat(node, 'alpha', 0.2);
      attrs.beta = attrFloat(node, 'beta', 0.5);
    } else if (op === 'LeakyRelu') {
      attrs.alpha = attrFloat(node, 'alpha', 0.01);
    }
    return this.expr(op.toLowerCase(), node, [x], x.dims, attrs);
  }

  private binary(node: NodeProto): Value {
    const inp = node.input ?? [];
    const a = this.get(inp[0]), b = this.get(inp[1]);
    if (a.kind === 'const' && b.kind === 'const') return this.foldShapeOp(node);
    const dims = broadcastDims(a.dims, b.dims) ?? this.fail(`cannot broadcast [${a.dims}] with [${b.dims}]`);
    return this.expr(node.opType!.toLowerCase(), node, [a, b], dims);
  }

  private averagePool(node: NodeProto): Value {
    const x = this.get((node.input ?? [])[0]);
    const k = attrInts(node, 'kernel_shape', []);
    const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
    if (x.dims.length === 4 && k[0] === x.dims[2] && k[1] === x.dims[3] && pads.every((p) => p === 0) && attrString(node, 'auto_pad', 'NOTSET') !== 'SAME_UPPER') {
      return this.expr('gap', node, [x], [1, x.dims[1], 1, 1]);
    }
    this.fail(`only a global AveragePool (kernel = the whole ${x.dims.slice(2).join('x')} image, no padding) is supported; kernel is ${k.join('x')}`);
  }

  /**
   * MaxPool of an int8 tensor (a DequantizeLinear of one in QDQ graphs, the tensor itself in QOperator
   * ones). Max commutes with (de)quantization, so MaxPool(DQ(q)) == DQ(maxpool(q)) exactly: the plan op
   * runs on the int8 values and its output keeps the input's scale and zero point (a QuantizeLinear
   * after it with other parameters becomes a requantization table, as for any DQ -> Q).
   */
  private maxPool(node: NodeProto): Value {
    const inp = node.input ?? [];
    if ((node.output ?? []).filter((o) => o).length > 1) this.fail('the Indices output is not supported');
    const x = this.get(inp[0]);
    if (x.kind !== 'q' && x.kind !== 'dq') {
      this.fail(`the input must be an int8 tensor or its DequantizeLinear, found ${x.kind === 'expr' ? `a float ${describeNode(x.node)}` : x.kind}`);
    }
    if (x.dims.length !== 4) this.fail(`only 2-D pooling is supported (input [${x.dims}])`);
    const k = attrInts(node, 'kernel_shape', []);
    if (k.length !== 2) this.fail(`kernel_shape must have 2 values, got [${k}]`);
    const shape = this.convShape(node, x.dims, [x.dims[1], 1, k[0], k[1]]);
    if (attrInt(node, 'ceil_mode', 0) !== 0) {
      // ceil_mode: windows that start inside the (left-padded) input but run past its end are kept;
      // the part outside is padding, which max pooling never selects.
      const grow = (inp: number, k: number, s: number, d: number, p0: number, p1: number) => {
        const eff = (k - 1) * d + 1;
        let out = Math.ceil((inp + p0 + p1 - eff) / s) + 1;
        if ((out - 1) * s >= inp + p0) out--;
        return { out, p1: Math.max(p1, (out - 1) * s + eff - inp - p0) };
      };
      const gh = grow(shape.inH, shape.kernelH, shape.strideH, shape.dilationH, shape.padTop, shape.padBottom);
      const gw = grow(shape.inW, shape.kernelW, shape.strideW, shape.dilationW, shape.padLeft, shape.padRight);
      shape.outH = gh.out; shape.padBottom = gh.p1;
      shape.outW = gw.out; shape.padRight = gw.p1;
    }
    const src = this.tensors[x.id];
    const name = node.output?.[0] ?? this.nodeName();
    const out = this.newTensor(name, [1, shape.outC, shape.outH, shape.outW], src.scale, src.zeroPoint);
    const op = makeOp(PlanOpType.maxPool, this.nodeName(), [x.id], out);
    op.shape = shape;
    this.ops.push(op);
    return { kind: x.kind, id: out, dims: [x.dims[0], shape.outC, shape.outH, shape.outW] };
  }

  private reshapeDims(node: NodeProto, x: Value): Dims {
    const inp = node.input ?? [];
    const d = x.dims;
    const size = d.reduce((a, b) => a * b, 1);
    switch (node.opType) {
      case 'Flatten': {
        let axis = attrInt(node, 'axis', 1);
        if (axis < 0) axis += d.length;
        const lead = d.slice(0, axis).reduce((a, b) => a * b, 1);
        return [lead, size / lead];
      }
      case 'Reshape': {
        const target = Array.from(this.constOf(inp[1], 'shape').data as ArrayLike<number>);
        const out = target.map((t, i) => (t === 0 && attrInt(node, 'allowzero', 0) === 0 ? d[i] : t));
        const known = out.filter((t) => t !== -1).reduce((a, b) => a * b, 1);
        return out.map((t) => (t === -1 ? size / known : t));
      }
      case 'Squeeze': {
        let axes = attrInts(node, 'axes', []);
        if (inp[1]) axes = Array.from(this.constOf(inp[1], 'axes').data as ArrayLike<number>);
        axes = axes.map((a) => (a < 0 ? a + d.length : a));
        return d.filter((v, i) => (axes.length ? !axes.includes(i) : v !== 1));
      }
      default: { // Unsqueeze
        let axes = attrInts(node, 'axes', []);
        if (inp[1]) axes = Array.from(this.constOf(inp[1], 'axes').data as ArrayLike<number>);
        const r = d.length + axes.length;
        axes = axes.map((a) => (a < 0 ? a + r : a)).sort((a, b) => a - b);
        const out = d.slice();
        for (const a of axes) out.splice(a, 0, 1);
        return out;
      }
    }
  }

  private reshape(node: NodeProto): Value {
    const x = this.get((node.input ?? [])[0]);
    if (x.kind === 'const') return this.foldShapeOp(node);
    const dims = this.reshapeDims(node, x);
    if (dims[0] !== 1) this.fail(`reshapes the batch dimension ([${x.dims}] -> [${dims}] at batch 1); only per-image reshapes are supported`);
    if (!layoutPreserving(x.dims, dims)) {
      this.fail(`reshape [${x.dims}] -> [${dims}] changes the memory order of an NHWC tensor; only reshapes of [N, C, 1, 1] / [N, C] are supported`);
    }
    if (x.kind === 'q') {
      const name = node.output?.[0];
      if (name) this.alias(x.id, name);
      return { kind: 'q', id: x.id, dims };
    }
    return this.expr('reshape', node, [x], dims);
  }

  /** Constant folding of small shape / index arithmetic (Shape -> Gather -> Unsqueeze -> Concat -> Reshape). */
  private foldShapeOp(node: NodeProto): Value {
    const inp = node.input ?? [];
    const c = (i: number) => this.constOf(inp[i], `input ${i}`);
    const vals = (v: ConstVal) => Array.from(v.data as ArrayLike<number>);
    const mk = (data: number[], dims: Dims, dtype = DataType.INT64): ConstVal => ({
      kind: 'const', data: dtype === DataType.FLOAT ? Float32Array.from(data) : Int32Array.from(data), dtype, dims,
    });
    switch (node.opType) {
      case 'Gather': {
        const d = c(0), idx = c(1);
        if (d.dims.length > 1) this.fail('Gather on constants is supported for 1-D shape vectors only');
        const v = vals(d);
        const out = vals(idx).map((i) => v[i < 0 ? i + v.length : i]);
        return mk(out, idx.dims, d.dtype);
      }
      case 'Unsqueeze': case 'Squeeze': case 'Flatten': case 'Reshape': {
        const d = c(0);
        return { ...d, dims: this.reshapeDims(node, d) };
      }
      case 'Concat': {
        const parts = inp.map((_, i) => c(i));
        return mk(parts.flatMap(vals), [parts.reduce((a, p) => a + p.data.length, 0)], parts[0].dtype);
      }
      case 'Cast': {
        const d = c(0);
        const to = attrInt(node, 'to', DataType.FLOAT);
        return mk(vals(d), d.dims, to === DataType.FLOAT ? DataType.FLOAT : DataType.INT64);
      }
      case 'Slice': {
        const d = c(0);
        const v = vals(d);
        const starts = vals(c(1)), ends = vals(c(2));
        if (d.dims.length !== 1) this.fail('Slice on constants is supported for 1-D shape vectors only');
        const s = Math.max(0, starts[0] < 0 ? starts[0] + v.length : starts[0]);
        const e = Math.min(v.length, ends[0] < 0 ? ends[0] + v.length : ends[0]);
        const out = v.slice(s, e);
        return mk(out, [out.length], d.dtype);
      }
      case 'Add': case 'Sub': case 'Mul': case 'Div': {
        const a = vals(c(0)), b = vals(c(1));
        const n = Math.max(a.length, b.length);
        const f = { Add: (x: number, y: number) => x + y, Sub: (x: number, y: number) => x - y, Mul: (x: number, y: number) => x * y, Div: (x: number, y: number) => x / y }[node.opType as 'Add'];
        const isFloat = c(0).dtype === DataType.FLOAT;
        const out = Array.from({ length: n }, (_, i) => {
          const r = f(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i]);
          return isFloat ? f32(r) : Math.trunc(r);
        });
        return mk(out, a.length >= b.length ? c(0).dims : c(1).dims, c(0).dtype);
      }
      default:
        this.fail('this operator is supported only on constants (shape arithmetic)');
    }
  }

  private gemm(node: NodeProto): Value {
    const inp = node.input ?? [];
    if (attrInt(node, 'transA', 0) !== 0) this.fail('transA = 1 is not supported');
    if (attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1) this.fail('alpha and beta must be 1');
    const a = this.get(inp[0]), b = this.get(inp[1], 'weights');
    const transB = attrInt(node, 'transB', 0);
    const n = transB ? b.dims[0] : b.dims[1];
    const args = [a, b, ...(inp[2] ? [this.get(inp[2], 'bias')] : [])];
    return this.expr('gemm', node, args, [a.dims[0], n], { transB });
  }

  private matmulDims(a: Dims, b: Dims): Dims {
    if (b.length !== 2) this.fail(`weights have shape [${b}]; expected a 2-D [K, N] matrix`);
    if (a[a.length - 1] !== b[0]) this.fail(`inner dimensions differ: [${a}] x [${b}]`);
    return [...a.slice(0, -1), b[1]];
  }

  private convDims(node: NodeProto, x: Dims, w: Dims): Dims {
    if (x.length !== 4 || w.length !== 4) this.fail(`only 2-D convolutions are supported (input [${x}], weights [${w}])`);
    const s = this.convShape(node, x, w);
    return [1, s.outC, s.outH, s.outW];
  }

  private convShape(node: NodeProto, x: Dims, w: Dims): PlanOp['shape'] {
    const [kh, kw] = [w[2], w[3]];
    const ks = attrInts(node, 'kernel_shape', [kh, kw]);
    if (ks[0] !== kh || ks[1] !== kw) this.fail(`kernel_shape ${ks} does not match the weights [${w}]`);
    const [sh, sw] = attrInts(node, 'strides', [1, 1]);
    const [dh, dw] = attrInts(node, 'dilations', [1, 1]);
    let [pt, pl, pb, pr] = attrInts(node, 'pads', [0, 0, 0, 0]);
    const autoPad = attrString(node, 'auto_pad', 'NOTSET');
    const [H, W] = [x[2], x[3]];
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const padFor = (inp: number, k: number, s: number, d: number) => {
        const out = Math.ceil(inp / s);
        return Math.max(0, (out - 1) * s + (k - 1) * d + 1 - inp);
      };
      const ph = padFor(H, kh, sh, dh), pw = padFor(W, kw, sw, dw);
      const small = (p: number) => (autoPad === 'SAME_UPPER' ? Math.floor(p / 2) : Math.ceil(p / 2));
      pt = small(ph); pb = ph - pt; pl = small(pw); pr = pw - pl;
    } else if (autoPad === 'VALID') {
      pt = pl = pb = pr = 0;
    }
    const outH = Math.floor((H + pt + pb - ((kh - 1) * dh + 1)) / sh) + 1;
    const outW = Math.floor((W + pl + pr - ((kw - 1) * dw + 1)) / sw) + 1;
    if (!(outH > 0 && outW > 0)) this.fail(`output would be empty (${outH}x${outW})`);
    return {
      inH: H, inW: W, inC: x[1], outH, outW, outC: w[0], kernelH: kh, kernelW: kw, strideH: sh, strideW: sw,
      dilationH: dh, dilationW: dw, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr,
    };
  }

  // ------------------------------------------------------------ lowering
  /** Lowers the float value x, quantized with (scale, zp), to plan ops; returns the output tensor. */
  private lower(x: Value, scale: number, zp: number, name: string, uint8: boolean): number {
    // Quantizing a DQ (optionally reshaped) again: a copy when the parameters match, else a requantization table.
    const chain = this.elementwise(x);
    if (chain) {
      const inT = this.tensors[chain.source];
      if (chain.e.fn === 'x' && inT.scale === f32(scale) && inT.zeroPoint === zp) {
        this.alias(chain.source, name);
        return chain.source;
      }
      return this.lut(chain.source, chain.e, x.dims, scale, zp, name);
    }
    // Peel Relu / Clip into a clamp of the output (ORT Relu/ClipQuantFusion; Q(clip(y)) == clamp(Q(y))).
    let lo = -Infinity, hi = Infinity;
    let core = x;
    while (core.kind === 'expr' && (core.op === 'relu' || core.op === 'clip')) {
      if (core.op === 'relu') lo = Math.max(lo, 0);
      else { lo = Math.max(lo, core.attrs!.lo as number); hi = Math.min(hi, core.attrs!.hi as number); }
      core = core.args[0];
    }
    const qmin = lo === -Infinity ? -128 : quantize(lo, scale, zp);
    const qmax = hi === Infinity ? 127 : quantize(hi, scale, zp);
    if (core.kind !== 'expr') this.fail(`cannot quantize a ${core.kind} value`);
    this.node = core.node;
    let id: number;
    switch (core.op) {
      case 'conv': id = this.lowerConv(core, scale, zp, name); break;
      case 'add': case 'mul': id = this.lowerBinary(core, scale, zp, name, uint8); break;
      case 'gap': id = this.lowerGap(core, scale, zp, name); break;
      case 'matmul': case 'gemm': id = this.lowerFullyConnected(core, scale, zp, name); break;
      case 'reshape': this.fail('reshape of a float computation before QuantizeLinear is not supported');
      // falls through (fail throws)
      default:
        this.fail(`${core.op === 'sub' || core.op === 'div' ? 'this arithmetic' : 'this operator'} between DequantizeLinear and QuantizeLinear is not supported (inputs must be DequantizeLinear outputs in a pattern ONNX Runtime quantizes)`);
    }
    const op = this.ops[this.ops.length - 1];
    op.qmin = Math.max(op.qmin, qmin);
    op.qmax = Math.min(op.qmax, qmax);
    if (op.qmin > op.qmax) this.fail(`Relu/Clip range [${lo}, ${hi}] is empty after quantization`);
    if (op.name !== name && x !== core) op.name = `${op.name}+${(x as ExprVal).node.name ?? ''}`;
    return id;
  }

  /** x as an elementwise function of one int8 tensor's DQ, or null. */
  private elementwise(x: Value): { source: number; e: Elementwise } | null {
    let source = -1;
    const walk = (v: Value): Elementwise | null => {
      if (v.kind === 'dq') {
        if (source >= 0 && source !== v.id) return null;
        source = v.id;
        return { fn: 'x' };
      }
      if (v.kind === 'const') return v.data.length === 1 ? { fn: 'const', value: Number(v.data[0]) } : null;
      if (v.kind !== 'expr') return null;
      const a = () => walk(v.args[0]);
      switch (v.op) {
        case 'reshape': return a();
        case 'relu': case 'sigmoid': case 'tanh': case 'hardswish': {
          const e = a();
          return e && ({ fn: v.op, a: e } as Elementwise);
        }
        case 'clip': { const e = a(); return e && { fn: 'clip', a: e, lo: v.attrs!.lo as number, hi: v.attrs!.hi as number }; }
        case 'hardsigmoid': { const e = a(); return e && { fn: 'hardsigmoid', a: e, alpha: v.attrs!.alpha as number, beta: v.attrs!.beta as number }; }
        case 'leakyrelu': { const e = a(); return e && { fn: 'leakyrelu', a: e, alpha: v.attrs!.alpha as number }; }
        case 'add': case 'sub': case 'mul': case 'div': {
          const p = walk(v.args[0]), q = walk(v.args[1]);
          if (!p || !q) return null;
          // Binary op of two DQ tensors (QLinearAdd / QLinearMul) is not elementwise-of-one unless both are the same tensor.
          return { fn: v.op, a: p, b: q };
        }
        default: return null;
      }
    };
    const e = walk(x);
    if (!e || source < 0) return null;
    // Add / Mul of a DQ with itself is rare; x * hardsigmoid(x) is the case we want. Pure x+x etc. is fine too.
    return { source, e };
  }

  private lut(source: number, e: Elementwise, dims: Dims, scale: number, zp: number, name: string): number {
    const inT = this.tensors[source];
    const out = this.newTensor(name, dims, scale, zp);
    const op = makeOp(PlanOpType.lut, this.nodeName(), [source], out);
    this.setActivation(op, e, inT.scale, inT.zeroPoint, scale, zp);
    this.ops.push(op);
    return out;
  }

  private setActivation(op: PlanOp, e: Elementwise, xScale: number, xZp: number, yScale: number, yZp: number): void {
    const params: UnaryParams | null = asUnaryParams(e);
    op.hasActivation = true;
    if (params) {
      op.activation = params;
      return;
    }
    const f = exactEvaluator(e);
    if (!f) this.fail(`the activation ${describeElementwise(e)} combines functions that mnq can only evaluate one at a time`);
    op.activation = { fn: UnaryFn.identity, p0: 0, p1: 0 };
    op.table = buildTable(f, xScale, xZp, yScale, yZp);
  }

  /** A constant-0 Pad of H and W (Keras' ZeroPadding2D) of an int8 tensor: pending, for the Conv that reads it. */
  private pad(node: NodeProto): Value {
    const inp = node.input ?? [];
    const x = this.get(inp[0]);
    if (x.kind !== 'dq' || x.dims.length !== 4) this.fail('Pad is supported only on a DequantizeLinear output of an int8 [N, C, H, W] tensor, before a Conv');
    const num = (v: Value, what: string): number[] => {
      if (v.kind === 'const') return Array.from(v.data as ArrayLike<number | bigint>, Number);
      if (v.kind === 'qconst') return Array.from(dequantizedConst(v));
      this.fail(`${what} must be a constant`);
    };
    const pads = inp[1] ? num(this.get(inp[1]), 'pads') : attrInts(node, 'pads', []);
    const value = inp[2] ? num(this.get(inp[2]), 'constant_value') : [attrFloat(node, 'value', 0)];
    const mode = attrString(node, 'mode', 'constant');
    const tlbr = inp[3] ? null : zeroPadHW(mode, pads, value);
    if (!tlbr) {
      this.fail(`only a constant-0 Pad of height and width (pads [0, 0, t, l, 0, 0, b, r], t..r >= 0) is supported, got mode ${mode}, pads [${pads}], value ${value}`);
    }
    const [t, l, b, r] = tlbr;
    const prev = x.pad ?? [0, 0, 0, 0];
    const pad = [prev[0] + t, prev[1] + l, prev[2] + b, prev[3] + r];
    return { kind: 'dq', id: x.id, dims: [x.dims[0], x.dims[1], x.dims[2] + t + b, x.dims[3] + l + r], pad };
  }

  private dqArg(v: Value, what: string, padded = false): DQVal {
    // Flatten / Reshape of a DQ (already checked to keep the NHWC byte order) reads the same int8 tensor.
    const dims = v.dims;
    while (v.kind === 'expr' && v.op === 'reshape') v = v.args[0];
    if (v.kind === 'dq' && v.pad && !padded) this.fail(`${what} is zero-padded by a Pad node; mnq folds such a Pad only into a Conv that reads it`);
    if (v.kind === 'dq') return { kind: 'dq', id: v.id, dims, ...(v.pad ? { pad: v.pad } : {}) };
    this.fail(`${what} must be a DequantizeLinear of an int8 tensor, found ${v.kind === 'expr' ? `a float ${describeNode(v.node)}` : v.kind}`);
  }

  private weightArg(v: Value, what: string): QConstVal {
    if (v.kind === 'const' && v.dtype === DataType.FLOAT) {
      this.fail(`${what} are float32, not quantized (a node kept in float, e.g. by \`mnq calibrate --exclude\`): mnq runs int8 weights only (a DequantizeLinear of constant int8/uint8 data)`);
    }
    if (v.kind !== 'qconst' || v.int32) this.fail(`${what} must be a DequantizeLinear of constant int8/uint8 data`);
    return v;
  }

  /** Per-output-channel scale / zero point arrays of quantized weights (channel axis `axis`). */
  private perChannel(w: QConstVal, n: number, axis: number, what: string): { scale: Float32Array; zp: Int32Array } {
    if (w.scale.length === 1) return { scale: new Float32Array(n).fill(w.scale[0]), zp: new Int32Array(n).fill(w.zeroPoint[0]) };
    if (w.axis !== axis || w.scale.length !== n) this.fail(`${what} are quantized along axis ${w.axis}; expected per-tensor or per-channel along axis ${axis}`);
    return { scale: w.scale, zp: w.zeroPoint };
  }

  /** int32 bias at scale xScale * wScale[c]: an int32 DQ is taken as is (as ORT's QLinearConv does); float biases are quantized. */
  private biasArg(b: Value | undefined, n: number, xScale: number, wScale: Float32Array): Int32Array {
    if (!b) return new Int32Array(0);
    if (b.kind === 'qconst' && b.int32) {
      if (b.data.length !== n) this.fail(`bias has ${b.data.length} values, expected ${n}`);
      return Int32Array.from(b.data);
    }
    let fb: ArrayLike<number> | null = null;
    if (b.kind === 'const' && b.dtype === DataType.FLOAT) fb = b.data as Float32Array;
    if (b.kind === 'qconst') fb = dequantizedConst(b);
    if (!fb || fb.length !== n) this.fail(`bias must be an int32 DequantizeLinear or a float constant of ${n} values`);
    return Int32Array.from(fb, (v, i) => Math.round(v / f32(xScale * wScale[i])));
  }

  private lowerConv(e: ExprVal, scale: number, zp: number, name: string): number {
    const x = this.dqArg(e.args[0], 'the input', true);
    const w = this.weightArg(e.args[1], 'the weights');
    const shape = this.convShape(e.node, x.dims, w.dims);
    if (x.pad) {
      // a conv over the zero-padded input = the conv with those pads added to its own (both pad with x_zp)
      const [t, l, b, r] = x.pad;
      shape.inH -= t + b; shape.inW -= l + r;
      shape.padTop += t; shape.padLeft += l; shape.padBottom += b; shape.padRight += r;
    }
    const groups = attrInt(e.node, 'group', 1);
    if (shape.inC % groups !== 0 || w.dims[1] * groups !== shape.inC) this.fail(`group = ${groups} does not match input channels ${shape.inC} and weights [${w.dims}]`);
    const depthwise = groups === shape.inC && groups === shape.outC;
    // a grouped conv whose groups each sum a few input channels into one output channel (mnq calibrate
    // --split-stem writes one): runs as a depthwise conv once its input is stored piece-major (pieceMajorInputs)
    const pieces = groups === shape.outC && groups > 1 && shape.inC % groups === 0 ? shape.inC / groups : 1;
    if (groups !== 1 && !depthwise && pieces === 1) this.fail(`grouped convolution with group = ${groups} (neither 1, depthwise, nor one output channel per group) is not supported`);
    if (pieces > 1 && shape.dilationW !== 1) this.fail(`grouped convolution with ${pieces} input channels per group and a horizontal dilation is not supported`);
    const xT = this.tensors[x.id];
    const { scale: wScale, zp: wZp } = this.perChannel(w, shape.outC, 0, 'weights');
    const out = this.newTensor(name, [1, shape.outC, shape.outH, shape.outW], scale, zp);
    const op = makeOp(PlanOpType.conv, e.node.name || name, [x.id], out);
    op.shape = shape;
    op.groups = groups;
    if (pieces > 1) op.inputPieces = pieces;
    op.weights = w.data as Int8Array;
    op.wScale = wScale;
    op.wZeroPoint = wZp.some((v) => v !== 0) ? wZp : new Int32Array(0);
    op.bias = this.biasArg(e.args[2], shape.outC, xT.scale, wScale);
    this.ops.push(op);
    return out;
  }

  /** uint8: the output (so, for ORT's QLinearAdd, all three tensors) is uint8 in the ONNX graph. */
  private lowerBinary(e: ExprVal, scale: number, zp: number, name: string, uint8: boolean): number {
    const [a, b] = e.args;
    const ids = [a, b].map((v) => {
      if (v.kind === 'dq') return v.id;
      if (v.kind === 'qconst' && !v.int32) return this.constantTensor(v, v.dims, name);
      this.fail(`inputs must be DequantizeLinear outputs of int8 tensors or constants (ORT QLinear${e.op === 'add' ? 'Add' : 'Mul'}); found ${v.kind === 'expr' ? `a float ${describeNode(v.node)}` : v.kind}`);
    });
    const [ta, tb] = ids.map((i) => this.tensors[i]);
    const same = ta.h === tb.h && ta.w === tb.w && ta.c === tb.c;
    let [ia, ib] = ids;
    if (!same) {
      // mul: b broadcast over pixels (SE). Put the [1, C, 1, 1] operand second.
      const bcast = (t: PlanTensor, o: PlanTensor) => t.h === 1 && t.w === 1 && t.c === o.c;
      if (e.op === 'mul' && bcast(ta, tb)) [ia, ib] = [ib, ia];
      else if (!(e.op === 'mul' && bcast(tb, ta))) this.fail(`operand shapes [${this.info[ia].dims}] and [${this.info[ib].dims}] differ; only equal shapes${e.op === 'mul' ? ' or a per-channel [N, C, 1, 1] scale' : ''} are supported`);
    }
    const out = this.newTensor(name, this.info[ia].dims, scale, zp);
    const op = makeOp(e.op === 'add' ? PlanOpType.add : PlanOpType.mul, e.node.name || name, [ia, ib], out);
    // ORT's QLinearAdd computes in float in the tensors' own (uint8 / int8) domain; QLinearMul
    // adds its output zero point in float before rounding, also in that domain.
    if (uint8) op.addOffset = 128;
    this.ops.push(op);
    return out;
  }

  /**
   * A constant int8 tensor as a plan tensor, produced by an op: a pointwise conv
   * (or fully connected) with zero weights whose int32 bias is the constant minus
   * its zero point and whose requantization multiplier is 1 (to within a few
   * float32 ulps, which cannot change round(bias * m) for |bias| <= 255).
   */
  private constantTensor(v: QConstVal, dims: Dims, consumer: string): number {
    const size = v.data.length;
    const hw = (dims.length === 4 ? dims[2] * dims[3] : 1);
    const c = size / hw;
    if (hw !== 1 || v.scale.length !== 1) this.fail('constant operands must be per-tensor quantized [C] / [1, C] / [1, C, 1, 1] vectors');
    // Any 1x1 tensor already computed can drive it; the input image cannot (it is spatial), so use the last 1x1 tensor.
    let src = -1;
    for (let i = this.tensors.length - 1; i >= 0; i--) {
      const t = this.tensors[i];
      if (t.h === 1 && t.w === 1) { src = i; break; }
    }
    if (src < 0) this.fail('a constant operand needs an earlier [N, C] tensor to be generated from; none found');
    const x = this.tensors[src];
    const out = this.newTensor(`${consumer}/constant`, [1, c], v.scale[0], v.zeroPoint[0]);
    const op = makeOp(PlanOpType.fullyConnected, `${this.nodeName()}/constant`, [src], out);
    op.weights = new Int8Array(c * x.c);
    const ws = f32(v.scale[0] / x.scale);
    op.wScale = new Float32Array(c).fill(ws);
    op.bias = Int32Array.from(v.data as Int8Array, (q) => q - v.zeroPoint[0]);
    op.shape = { ...op.shape, inH: 1, inW: 1, inC: x.c, outH: 1, outW: 1, outC: c };
    this.ops.push(op);
    return out;
  }

  private lowerGap(e: ExprVal, scale: number, zp: number, name: string): number {
    const x = this.dqArg(e.args[0], 'the input');
    const out = this.newTensor(name, e.dims, scale, zp);
    this.ops.push(makeOp(PlanOpType.globalAvgPool, e.node.name || name, [x.id], out));
    return out;
  }

  private lowerFullyConnected(e: ExprVal, scale: number, zp: number, name: string): number {
    const x = this.dqArg(e.args[0], 'the input');
    const w = this.weightArg(e.args[1], 'the weights');
    const xT = this.tensors[x.id];
    if (xT.h !== 1 || xT.w !== 1) this.fail(`input must be a flattened [N, K] tensor, has shape [${this.info[x.id].dims}]`);
    const transB = e.op === 'gemm' && (e.attrs?.transB as number) === 1;
    const [k, n] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
    if (k !== xT.c) this.fail(`weights [${w.dims}] do not match input features ${xT.c}`);
    const { scale: wScale, zp: wZp } = this.perChannel(w, n, transB ? 0 : 1, 'weights');
    const weights = new Int8Array(n * k);
    const src = w.data as Int8Array;
    for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) weights[j * k + i] = transB ? src[j * k + i] : src[i * n + j];
    const out = this.newTensor(name, [1, n], scale, zp);
    const op = makeOp(PlanOpType.fullyConnected, e.node.name || name, [x.id], out);
    op.weights = weights;
    op.wScale = wScale;
    op.wZeroPoint = wZp.some((v) => v !== 0) ? wZp : new Int32Array(0);
    op.bias = this.biasArg(e.args[2], n, xT.scale, wScale);
    op.shape = { ...op.shape, inH: 1, inW: 1, inC: k, outH: 1, outW: 1, outC: n };
    this.ops.push(op);
    return out;
  }

  // ------------------------------------------------------------ QOperator
  private qIn(name: string | null | undefined, scaleName: string | null | undefined, zpName: string | null | undefined, what: string): DQVal {
    const v = this.get(name, what);
    if (v.kind !== 'q') this.fail(`${what} '${name}' must be an int8/uint8 tensor`);
    const scale = this.scalarOf(scaleName, `${what} scale`);
    const { zp } = this.zeroPointOf(zpName, `${what} zero point`);
    const t = this.tensors[v.id];
    if (f32(scale) !== t.scale || zp !== t.zeroPoint) this.fail(`${what} is read with scale ${scale} / zero point ${zp} but was written with ${t.scale} / ${t.zeroPoint}`);
    return { kind: 'dq', id: v.id, dims: v.dims };
  }

  private qWeights(name: string | null | undefined, scaleName: string | null | undefined, zpName: string | null | undefined, axis: number): QConstVal {
    const c = this.constOf(name, 'weights');
    // QLinear* per-channel scales are along the output channel axis (0 for conv weights, 1 for MatMul's [K, N]).
    return this.quantizedConst(this.node, c, scaleName, zpName, axis);
  }

  private qlinearConv(node: NodeProto): Value {
    const i = node.input ?? [];
    const xv = this.qIn(i[0], i[1], i[2], 'x');
    const w = this.qWeights(i[3], i[4], i[5], 0);
    const scale = this.scalarOf(i[6], 'y_scale');
    const { zp } = this.zeroPointOf(i[7], 'y_zero_point');
    const bias: Value | undefined = i[8] ? (() => {
      const b = this.constOf(i[8], 'bias');
      if (b.dtype !== DataType.INT32) this.fail('bias must be int32');
      return { kind: 'qconst', data: b.data as Int32Array, int32: true, scale: new Float32Array(1), zeroPoint: new Int32Array(1), axis: 0, dims: b.dims, node } as QConstVal;
    })() : undefined;
    const e = this.expr('conv', node, bias ? [xv, w, bias] : [xv, w], this.convDims(node, xv.dims, w.dims));
    const id = this.lowerConv(e, scale, zp, node.output?.[0] ?? this.nodeName());
    return { kind: 'q', id, dims: e.dims };
  }

  private qlinearBinary(node: NodeProto): Value {
    const i = node.input ?? [];
    const operand = (n: number): Value => {
      const v = this.get(i[n]);
      if (v.kind === 'const') return this.quantizedConst(node, v, i[n + 1], i[n + 2]);
      return this.qIn(i[n], i[n + 1], i[n + 2], n === 0 ? 'A' : 'B');
    };
    const a = operand(0), b = operand(3);
    const scale = this.scalarOf(i[6], 'C_scale');
    const { zp, uint8 } = this.zeroPointOf(i[7], 'C_zero_point');
    const dims = broadcastDims(a.dims, b.dims) ?? this.fail(`cannot broadcast [${a.dims}] with [${b.dims}]`);
    const opName = node.opType === 'QLinearAdd' ? 'add' : 'mul';
    // A constant operand gets its own shape [1, C] so it lines up with a [1, C] tensor.
    for (const v of [a, b]) if (v.kind === 'qconst' && v.dims.length === 1) v.dims = [1, v.dims[0]];
    const e = this.expr(opName, node, [a, b], dims);
    const id = this.lowerBinary(e, scale, zp, node.output?.[0] ?? this.nodeName(), uint8);
    return { kind: 'q', id, dims };
  }

  private qlinearGap(node: NodeProto): Value {
    const i = node.input ?? [];
    const xv = this.qIn(i[0], i[1], i[2], 'X');
    const xd = xv.dims;
    if (attrInt(node, 'channels_last', 0) !== 0) this.fail('channels_last = 1 is not supported');
    const scale = this.scalarOf(i[3], 'y_scale');
    const { zp } = this.zeroPointOf(i[4], 'y_zero_point');
    const e = this.expr('gap', node, [xv], [1, xd[1], 1, 1]);
    return { kind: 'q', id: this.lowerGap(e, scale, zp, node.output?.[0] ?? this.nodeName()), dims: e.dims };
  }

  private qlinearMatMul(node: NodeProto): Value {
    const i = node.input ?? [];
    const xv = this.qIn(i[0], i[1], i[2], 'a');
    const w = this.qWeights(i[3], i[4], i[5], 1);
    const scale = this.scalarOf(i[6], 'y_scale');
    const { zp } = this.zeroPointOf(i[7], 'y_zero_point');
    const e = this.expr('matmul', node, [xv, w], this.matmulDims(xv.dims, w.dims));
    return { kind: 'q', id: this.lowerFullyConnected(e, scale, zp, node.output?.[0] ?? this.nodeName()), dims: e.dims };
  }

  private qlinearUnary(node: NodeProto): Value {
    const i = node.input ?? [];
    const { id: x, dims } = this.qIn(i[0], i[1], i[2], 'X');
    const scale = this.scalarOf(i[3], 'Y_scale');
    const { zp } = this.zeroPointOf(i[4], 'Y_zero_point');
    const e: Elementwise = node.opType === 'QLinearSigmoid'
      ? { fn: 'sigmoid', a: { fn: 'x' } }
      : { fn: 'leakyrelu', a: { fn: 'x' }, alpha: attrFloat(node, 'alpha', 0.01) };
    return { kind: 'q', id: this.lut(x, e, dims, scale, zp, node.output?.[0] ?? this.nodeName()), dims };
  }
}

// ------------------------------------------------------------------ passes

/**
 * conv -> T -> lut: when T is read only by the table and is not returned, the
 * table is applied in the conv's output stage (actScale / actZeroPoint = T's).
 */
function fuseActivations(plan: PlanDesc): void {
  const readers = new Map<number, number>();
  for (const op of plan.ops) for (const t of op.inputs) readers.set(t, (readers.get(t) ?? 0) + 1);
  const returned = new Set(plan.outputs);
  const producer = new Map<number, PlanOp>();
  for (const op of plan.ops) producer.set(op.output, op);
  const keep: PlanOp[] = [];
  for (const op of plan.ops) {
    const src = op.inputs[0];
    const p = producer.get(src);
    if (op.type === PlanOpType.lut && p && p.type === PlanOpType.conv && !p.hasActivation
      && readers.get(src) === 1 && !returned.has(src)) {
      const t = plan.tensors[src];
      p.hasActivation = true;
      p.activation = op.activation;
      p.table = op.table;
      p.actScale = t.scale;
      p.actZeroPoint = t.zeroPoint;
      p.output = op.output;
      p.name = `${p.name}+${op.name}`;
      producer.set(op.output, p);
      continue;
    }
    keep.push(op);
  }
  plan.ops = keep;
}

/** ORT DequantizeLinear of a constant: float32((q - zp) * scale), per tensor or per channel (flat). */
function dequantizedConst(v: QConstVal): Float32Array {
  const per = v.scale.length === 1 ? () => 0 : (i: number) => i;
  return Float32Array.from(v.data, (q, i) => f32((q - v.zeroPoint[per(i)]) * v.scale[per(i)]));
}

/**
 * Each conv with inputPieces m > 1 reads its input piece-major (PlanOp.inputPieces): walks back from
 * that tensor through standalone tables (elementwise, per tensor) to the conv that writes it and permutes
 * that conv's output channels (ONNX channel c * m + j becomes channel j * C + c). Every tensor on the way
 * must be read only by the next op back in the chain or by convs with the same m, and must not be a graph
 * output. Returns the permuted tensors with their m.
 */
function pieceMajorInputs(plan: PlanDesc, graphOutputs: Set<number>): Map<number, number> {
  const done = new Map<number, number>();
  const producer = new Map<number, PlanOp>();
  const readers = new Map<number, PlanOp[]>();
  for (const op of plan.ops) {
    producer.set(op.output, op);
    for (const t of op.inputs) readers.set(t, [...(readers.get(t) ?? []), op]);
  }
  for (const op of plan.ops) {
    const m = op.inputPieces;
    if (m <= 1 || done.get(op.inputs[0]) === m) continue;
    const C = op.shape.outC;
    const bad: (why: string) => never = (why) => {
      throw new UnsupportedModelError(`node '${op.name}': a grouped Conv with ${m} input channels per group needs ${why}`);
    };
    const chain: number[] = [];
    let t = op.inputs[0];
    for (;;) {
      if (done.has(t)) bad(`an input of its own (tensor '${plan.tensors[t].name}' is also read with ${done.get(t)} channels per group)`);
      if (graphOutputs.has(t)) bad(`an input that is not a graph output ('${plan.tensors[t].name}' is)`);
      const next = chain.length ? producer.get(chain[chain.length - 1]) : undefined;
      for (const r of readers.get(t) ?? []) {
        if (r !== next && !(r.type === PlanOpType.conv && r.inputPieces === m && r.shape.outC === C)) {
          bad(`its input to be read only by such convolutions ('${plan.tensors[t].name}' is also read by '${r.name}')`);
        }
      }
      chain.push(t);
      const p = producer.get(t);
      if (p && p.type === PlanOpType.lut) { t = p.inputs[0]; continue; }
      if (!p || p.type !== PlanOpType.conv || p.groups !== 1 || p.shape.outC !== m * C) {
        bad(`its input to be computed by a Conv (with group 1) from which it can take its channels in another order ('${plan.tensors[t].name}' is ${p ? `written by '${p.name}'` : 'the graph input'})`);
      }
      const O = m * C, per = p.weights.length / O;
      const w = new Int8Array(p.weights.length), ws = new Float32Array(O);
      const b = new Int32Array(p.bias.length), zp = new Int32Array(p.wZeroPoint.length);
      for (let c = 0; c < C; c++) {
        for (let j = 0; j < m; j++) {
          const from = c * m + j, to = j * C + c;
          w.set(p.weights.subarray(from * per, (from + 1) * per), to * per);
          ws[to] = p.wScale[from];
          if (b.length) b[to] = p.bias[from];
          if (zp.length) zp[to] = p.wZeroPoint[from];
        }
      }
      p.weights = w; p.wScale = ws; p.bias = b; p.wZeroPoint = zp;
      break;
    }
    for (const x of chain) done.set(x, m);
  }
  return done;
}

/** Drops tensors no op writes or reads; returns old id -> new id. */
function compact(plan: PlanDesc): number[] {
  const used = new Set<number>([plan.input, ...plan.outputs]);
  for (const op of plan.ops) { used.add(op.output); op.inputs.forEach((t) => used.add(t)); }
  const remap = new Array<number>(plan.tensors.length).fill(-1);
  const tensors: PlanTensor[] = [];
  plan.tensors.forEach((t, i) => { if (used.has(i)) { remap[i] = tensors.length; tensors.push(t); } });
  plan.tensors = tensors;
  plan.input = remap[plan.input];
  plan.outputs = plan.outputs.map((t) => remap[t]);
  for (const op of plan.ops) { op.output = remap[op.output]; op.inputs = op.inputs.map((t) => remap[t]); }
  return remap;
}

// ------------------------------------------------------------------ shapes

/** [height, width] from the `size` of the model's mnq.preprocess metadata, if it has one. */
function metadataInputSize(model: onnx.ModelProto): [number, number] | undefined {
  const meta = (model.metadataProps ?? []).find((p) => p.key === METADATA_KEYS.preprocess)?.value;
  if (!meta) return undefined;
  try {
    return parsePreprocess(meta).size;
  } catch (e) {
    throw new UnsupportedModelError(`metadata ${METADATA_KEYS.preprocess}: ${(e as Error).message}`);
  }
}

function chw(dims: Dims, bad: () => never): [number, number, number] {
  if (dims.length === 2 && dims[0] === 1) return [dims[1], 1, 1];
  if (dims.length === 4 && dims[0] === 1) return [dims[1], dims[2], dims[3]];
  if (dims.length === 3 && dims[0] === 1) return [dims[1], 1, dims[2]];
  if (dims.length === 1) return [dims[0], 1, 1];
  return bad();
}

/** Same bytes in NHWC order: either equal [C, H, W] or only channels. */
function layoutPreserving(a: Dims, b: Dims): boolean {
  const spatial = (d: Dims) => d.slice(2).reduce((x, y) => x * y, 1);
  if (spatial(a) === 1 && spatial(b) === 1) return true;
  const strip = (d: Dims) => d.filter((v, i) => i === 0 || v !== 1 || false);
  return strip(a).join() === strip(b).join();
}

function broadcastDims(a: Dims, b: Dims): Dims | null {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

function valueInfoShape(v: onnx.IValueInfoProto): Dim[] {
  const dims = v.type?.tensorType?.shape?.dim ?? [];
  return dims.map((d, i) => {
    if (d.dimValue !== undefined && d.dimValue !== null && toNum(d.dimValue as never) > 0) return toNum(d.dimValue as never);
    return d.dimParam || (i === 0 ? 'N' : `d${i}`);
  });
}

/** Compiles an int8 ONNX model (already decoded) into a plan. */
export function compileModel(model: onnx.ModelProto, options: CompileOptions = {}): CompiledModel {
  return new Compiler(model, options).compile();
}
