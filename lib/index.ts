// mnq: int8 MobileNet inference for Node.js. The package root.
//
//   import { load } from 'mnq';
//   const model = await load('model.onnx', { threads: 2 });
//   const logits = await model.run(nchwFloat32, [1, 3, 224, 224]);
export { load, Model } from './model';
export type { LoadOptions, RunOptions, QuantizedTensor, TensorInfo, InputQuantization, ModelMemory, Dim } from './model';
export { compile, UnsupportedModelError } from './compiler';
export type { CompileOptions, CompiledModel } from './compiler';
export { OnnxFormatError } from './onnx/proto';
export type { IsaName, ExecutorName } from './native';
export type { PlanDesc } from './plan';

// Image classification (sharp pipeline, labels, top-k).
export { classify, Classifier, loadOrtModel } from './classify';
export { softmax, topK } from './numerics/softmax';
export type { Prediction, ClassifyOptions, ClassifyOutcome, ClassifierModel } from './classify';
export { ImagePipeline, ImageError } from './image';
export { parsePreprocess, PREPROCESS } from './preprocess-spec';
export { loadLabels, imagenetClassOfFile } from './labels';

// Model builder: MobileNet V1 / V2 / V3-Large / V3-Small as float ONNX.
export { buildMobileNet, countArch, saveModel } from './builder';
export type { BuildOptions, BuiltModel } from './builder';

// Serving: an HTTP inference server with dynamic batching (Open Inference Protocol, :classify, metrics).
export { createServer } from './serve';
export type { MnqServer, ServeOptions, ServeModelSpec, ServableModel } from './serve';
