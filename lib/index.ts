// mnq: int8 MobileNet inference for Node.js. The package root.
//
//   import { load } from 'mnq';
//   const model = await load('model.onnx', { threads: 2 });
//   const logits = await model.run(nchwFloat32, [1, 3, 224, 224]);
export { load, Model } from './model';
export type { LoadOptions, RunOptions, QuantizedTensor, TensorInfo, InputQuantization, Dim } from './model';
export { compile, UnsupportedModelError } from './compiler';
export type { CompileOptions, CompiledModel } from './compiler';
export { OnnxFormatError } from './onnx/proto';
export type { IsaName } from './native';
export type { PlanDesc } from './plan';
