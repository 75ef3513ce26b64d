// MaxPool -> maxPool op, emitted when the node is read: max commutes with (de)quantization, so
// MaxPool(DQ(q)) == DQ(maxpool(q)) exactly.
import { NodeProto, attrInt, attrInts, describeNode } from '../../onnx/proto';
import { Dtype, PlanOpType, makeOp } from '../../plan';
import { CompileState } from '../state';
import { convShape } from '../shapes';
import { Value } from '../values';

/**
 * MaxPool of an int8 tensor (a DequantizeLinear of one in QDQ graphs, the tensor itself in QOperator
 * ones). The plan op runs on the int8 values and its output keeps the input's scale and zero point
 * (a QuantizeLinear after it with other parameters becomes a requantization table, as for any DQ -> Q).
 */
export function maxPool(s: CompileState, node: NodeProto): Value {
  const inp = node.input ?? [];
  if ((node.output ?? []).filter((o) => o).length > 1) s.fail('the Indices output is not supported');
  const x = s.get(inp[0]);
  if (x.kind !== 'q' && x.kind !== 'dq') {
    s.fail(`the input must be an int8 tensor or its DequantizeLinear, found ${x.kind === 'expr' ? `a float ${describeNode(x.node)}` : x.kind}`);
  }
  if (x.dims.length !== 4) s.fail(`only 2-D pooling is supported (input [${x.dims}])`);
  const k = attrInts(node, 'kernel_shape', []);
  if (k.length !== 2) s.fail(`kernel_shape must have 2 values, got [${k}]`);
  const shape = convShape(s, node, x.dims, [x.dims[1], 1, k[0], k[1]]);
  if (attrInt(node, 'ceil_mode', 0) !== 0) {
    // ceil_mode: windows that start inside the (left-padded) input but run past its end are kept;
    // the part outside is padding, which max pooling never selects.
    const grow = (inp: number, k: number, stride: number, d: number, p0: number, p1: number) => {
      const eff = (k - 1) * d + 1;
      let out = Math.ceil((inp + p0 + p1 - eff) / stride) + 1;
      if ((out - 1) * stride >= inp + p0) out--;
      return { out, p1: Math.max(p1, (out - 1) * stride + eff - inp - p0) };
    };
    const gh = grow(shape.inH, shape.kernelH, shape.strideH, shape.dilationH, shape.padTop, shape.padBottom);
    const gw = grow(shape.inW, shape.kernelW, shape.strideW, shape.dilationW, shape.padLeft, shape.padRight);
    shape.outH = gh.out; shape.padBottom = gh.p1;
    shape.outW = gw.out; shape.padRight = gw.p1;
  }
  if (s.dtypeOf(x.id) !== Dtype.int8) s.fail('MaxPool of an int16 tensor is not supported');
  const src = s.tensors[x.id];
  const name = node.output?.[0] ?? s.nodeName();
  const out = s.newTensor(name, [1, shape.outC, shape.outH, shape.outW], src.scale, src.zeroPoint);
  const op = makeOp(PlanOpType.maxPool, s.nodeName(), [x.id], out);
  op.shape = shape;
  s.ops.push(op);
  return { kind: x.kind, id: out, dims: [x.dims[0], shape.outC, shape.outH, shape.outW] };
}
