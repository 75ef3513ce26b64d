// ONNX int8 graph -> execution plan (lib/plan.ts): the orchestration.
//
// One pass over the nodes in graph order gives every ONNX tensor an abstract value (values.ts; the front end,
// graph-reader.ts). Each QuantizeLinear then lowers the float expression it quantizes into plan ops (lower/),
// matching the node groups ONNX Runtime fuses (QDQ -> QLinearConv, QLinearAdd, QLinearMul,
// QLinearGlobalAveragePool, QLinearMatMul; a Relu / Clip before Q folds into the clamp; elementwise float
// functions between DQ and Q become tables). QOperator nodes map to plan ops directly (qoperator.ts). uint8
// tensors are shifted to int8 (data - 128, zero point - 128), which is exact for every op but Add and Mul: ORT's
// QLinearAdd does float arithmetic on the uint8 values and its QLinearMul adds the uint8 zero point in float, so
// a uint8 add or mul carries addOffset = 128. Then the
// passes (passes/); the native runtime makes the memory plan.
import { onnx } from '../onnx/proto';
import { METADATA_KEYS, readMetadata } from '../onnx/metadata';
import { parsePreprocess } from '../preprocess-spec';
import { Dtype, InputLayout, PlanDesc } from '../plan';
import { CompiledModel, CompiledOutput, CompileOptions } from './compiled-model';
import { CompileState } from './state';
import { readGraphInput, readGraphOutput, readNode } from './graph-reader';
import { pieceMajorInputs } from './passes/piece-major-inputs';
import { fuseActivations } from './passes/fuse-activations';
import { compact } from './passes/compact';
import { UnsupportedModelError, errorInModel } from './unsupported-model-error';

/**
 * Compiles an int8 ONNX model (already decoded) into a plan. Throws UnsupportedModelError (or OnnxFormatError for
 * malformed contents) naming options.source, the node and its op type.
 */
export function compileModel(model: onnx.ModelProto, options: CompileOptions = {}): CompiledModel {
  const s = new CompileState();
  try {
    return compileGraph(s, model, options);
  } catch (e) {
    throw errorInModel(e, options.source ?? 'model', s.node);
  }
}

function compileGraph(s: CompileState, model: onnx.ModelProto, options: CompileOptions): CompiledModel {
  const g = model.graph!;
  const input = readGraphInput(s, g, () => options.inputSize ?? metadataInputSize(model));
  for (const node of g.node ?? []) readNode(s, node);
  s.node = undefined;

  if (s.inputId < 0) throw new UnsupportedModelError(`input '${input.name}' is never quantized (no QuantizeLinear reads it): not an int8 model`);

  if (!g.output?.length) throw new UnsupportedModelError('model has no graph outputs');
  const outputs: CompiledOutput[] = [];
  for (const o of g.output ?? []) outputs.push(readGraphOutput(s, o));

  const keepAll = options.keep === 'all';
  const kept: CompiledModel['kept'] = [];
  const int8 = (id: number) => (s.tensors[id].dtype ?? Dtype.int8) === Dtype.int8; // plan outputs are int8
  if (keepAll) {
    for (const op of s.ops) if (int8(op.output)) kept.push({ name: s.tensors[op.output].name, tensor: op.output });
  } else {
    for (const name of options.keep ?? []) {
      const id = s.byName.get(name);
      if (id === undefined || !int8(id)) throw new UnsupportedModelError(`cannot keep '${name}': not an int8 tensor of the model`);
      kept.push({ name, tensor: id });
    }
  }

  const plan: PlanDesc = {
    tensors: s.tensors,
    ops: s.ops,
    input: s.inputId,
    outputs: [...outputs.map((o) => o.tensor), ...kept.map((k) => k.tensor)],
    inputLayout: input.layout === 'nhwc' ? InputLayout.nhwc : InputLayout.nchw,
  };
  const pieceMajor = pieceMajorInputs(plan, new Set(outputs.map((o) => o.tensor)));
  for (const k of kept) if (pieceMajor.has(k.tensor)) k.pieces = pieceMajor.get(k.tensor);
  if (!keepAll) fuseActivations(plan);
  const remap = compact(plan);
  for (const o of outputs) o.tensor = remap[o.tensor];
  for (const k of kept) k.tensor = remap[k.tensor];

  const it = plan.tensors[plan.input];
  return {
    plan,
    input: { name: input.name, shape: input.shape, layout: input.layout, c: it.c, h: it.h, w: it.w, scale: it.scale, zeroPoint: it.zeroPoint },
    outputs,
    kept,
  };
}

/** [height, width] from the `size` of the model's mnq.preprocess metadata, if it has one. */
function metadataInputSize(model: onnx.ModelProto): [number, number] | undefined {
  const meta = readMetadata(model)[METADATA_KEYS.preprocess];
  if (!meta) return undefined;
  try {
    return parsePreprocess(meta).size;
  } catch (e) {
    throw new UnsupportedModelError(`metadata ${METADATA_KEYS.preprocess}: ${(e as Error).message}`);
  }
}
