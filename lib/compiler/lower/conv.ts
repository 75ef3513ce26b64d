// Conv -> conv op: DQ -> Conv -> Q in QDQ graphs (what ORT fuses into QLinearConv), and QLinearConv itself
// (qoperator.ts). Standard, depthwise and grouped convs with one output channel per group (the latter run as
// a depthwise conv over a piece-major input, passes/piece-major-inputs.ts); a zero Pad before it joins its pads.
import { attrInt } from '../../onnx/proto';
import { Dtype, PlanOpType, makeOp } from '../../plan';
import { CompileState } from '../state';
import { convShape } from '../shapes';
import { ExprVal } from '../values';
import { biasArg, dqArg, perChannel, weightArg, weightZeroPoints } from './operands';

export function lowerConv(s: CompileState, e: ExprVal, scale: number, zp: number, name: string, dtype: Dtype = Dtype.int8): number {
  const x = dqArg(s, e.args[0], 'the input', true);
  const w = weightArg(s, e.args[1], 'the weights');
  const shape = convShape(s, e.node, x.dims, w.dims);
  if (x.pad) {
    // a conv over the zero-padded input = the conv with those pads added to its own (both pad with x_zp)
    const [t, l, b, r] = x.pad;
    shape.inH -= t + b; shape.inW -= l + r;
    shape.padTop += t; shape.padLeft += l; shape.padBottom += b; shape.padRight += r;
  }
  const groups = attrInt(e.node, 'group', 1);
  if (shape.inC % groups !== 0 || w.dims[1] * groups !== shape.inC) s.fail(`group = ${groups} does not match input channels ${shape.inC} and weights [${w.dims}]`);
  const depthwise = groups === shape.inC && groups === shape.outC;
  // a grouped conv whose groups each sum a few input channels into one output channel (mnq calibrate
  // --split-stem writes one): runs as a depthwise conv once its input is stored piece-major (pieceMajorInputs)
  const pieces = groups === shape.outC && groups > 1 && shape.inC % groups === 0 ? shape.inC / groups : 1;
  if (groups !== 1 && !depthwise && pieces === 1) s.fail(`grouped convolution with group = ${groups} (neither 1, depthwise, nor one output channel per group) is not supported`);
  if (pieces > 1 && shape.dilationW !== 1) s.fail(`grouped convolution with ${pieces} input channels per group and a horizontal dilation is not supported`);
  const xT = s.tensors[x.id];
  const { scale: wScale, zp: wZp } = perChannel(s, w, shape.outC, 0, 'weights');
  const out = s.newTensor(name, [1, shape.outC, shape.outH, shape.outW], scale, zp, dtype);
  const op = makeOp(PlanOpType.conv, e.node.name || name, [x.id], out);
  op.shape = shape;
  op.groups = groups;
  if (pieces > 1) op.inputPieces = pieces;
  op.weights = w.data as Int8Array;
  op.wScale = wScale;
  op.wZeroPoint = weightZeroPoints(wZp);
  op.bias = biasArg(s, e.args[2], shape.outC, xT.scale, wScale);
  s.ops.push(op);
  return out;
}
