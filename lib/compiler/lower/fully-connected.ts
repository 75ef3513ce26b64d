// MatMul / Gemm of a flattened int8 tensor and int8 weights -> fullyConnected op: DQ, DQ(w) -> MatMul|Gemm -> Q
// (ORT's QLinearMatMul / QGemm), and QLinearMatMul itself. Weights are stored [N][K].
import { Dtype, PlanOpType, makeOp } from '../../plan';
import { CompileState } from '../state';
import { ExprVal } from '../values';
import { biasArg, dqArg, perChannel, weightArg, weightZeroPoints } from './operands';

export function lowerFullyConnected(s: CompileState, e: ExprVal, scale: number, zp: number, name: string, dtype: Dtype = Dtype.int8): number {
  const x = dqArg(s, e.args[0], 'the input');
  const w = weightArg(s, e.args[1], 'the weights');
  const xT = s.tensors[x.id];
  if (xT.h !== 1 || xT.w !== 1) s.fail(`input must be a flattened [N, K] tensor, has shape [${s.info[x.id].dims}]`);
  const transB = e.op === 'gemm' && (e.attrs?.transB as number) === 1;
  const [k, n] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
  if (k !== xT.c) s.fail(`weights [${w.dims}] do not match input features ${xT.c}`);
  const { scale: wScale, zp: wZp } = perChannel(s, w, n, transB ? 0 : 1, 'weights');
  const weights = new Int8Array(n * k);
  const src = w.data as Int8Array;
  for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) weights[j * k + i] = transB ? src[j * k + i] : src[i * n + j];
  const out = s.newTensor(name, [1, n], scale, zp, dtype);
  const op = makeOp(PlanOpType.fullyConnected, e.node.name || name, [x.id], out);
  op.weights = weights;
  op.wScale = wScale;
  op.wZeroPoint = weightZeroPoints(wZp);
  op.bias = biasArg(s, e.args[2], n, xT.scale, wScale);
  op.shape = { ...op.shape, inH: 1, inW: 1, inC: k, outH: 1, outW: 1, outC: n };
  s.ops.push(op);
  return out;
}
