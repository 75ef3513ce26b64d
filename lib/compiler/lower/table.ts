// Elementwise float functions of one int8 tensor between its DequantizeLinear and a QuantizeLinear (activations,
// x * HardSigmoid(x), arithmetic with scalar constants, requantization) as a lut op: a 256-entry table, from a
// standard function the native runtime tabulates (UnaryParams) or from exact float32 arithmetic tabulated here.
import { Dtype, PlanOp, PlanOpType, UnaryFn, UnaryParams, dtypeRange, makeOp } from '../../plan';
import { Elementwise, asUnaryParams, buildTable, describeElementwise, exactEvaluator } from '../activation';
import { CompileState } from '../state';
import { Dims, Value } from '../values';

/** x as an elementwise function of one int8 tensor's DQ, or null. */
export function elementwise(x: Value): { source: number; e: Elementwise } | null {
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

/** A lut op computing e of tensor `source` into a new tensor quantized with (scale, zp). */
export function lut(s: CompileState, source: number, e: Elementwise, dims: Dims, scale: number, zp: number, name: string, dtype: Dtype = Dtype.int8): number {
  const inT = s.tensors[source];
  const out = s.newTensor(name, dims, scale, zp, dtype);
  const op = makeOp(PlanOpType.lut, s.nodeName(), [source], out);
  const inDtype = s.dtypeOf(source);
  if (inDtype !== Dtype.int8 || dtype !== Dtype.int8) {
    // int16 in or out: the runtime evaluates one standard function per element (no table), clamping its input
    const params = asUnaryParams(e);
    if (!params) s.fail(`the activation ${describeElementwise(e)} on int16 tensors is not one standard function; mnq evaluates only those (ReLU, Clip, HardSigmoid, HardSwish, Sigmoid, Tanh, LeakyRelu, x * HardSigmoid(x), requantization)`);
    op.activation = params;
    [op.qmin, op.qmax] = dtypeRange(inDtype);
    s.ops.push(op);
    return out;
  }
  setActivation(s, op, e, inT.scale, inT.zeroPoint, scale, zp);
  s.ops.push(op);
  return out;
}

function setActivation(s: CompileState, op: PlanOp, e: Elementwise, xScale: number, xZp: number, yScale: number, yZp: number): void {
  const params: UnaryParams | null = asUnaryParams(e);
  op.hasActivation = true;
  if (params) {
    op.activation = params;
    return;
  }
  const f = exactEvaluator(e);
  if (!f) s.fail(`the activation ${describeElementwise(e)} combines functions that mnq can only evaluate one at a time`);
  op.activation = { fn: UnaryFn.identity, p0: 0, p1: 0 };
  op.table = buildTable(f, xScale, xZp, yScale, yZp);
}
