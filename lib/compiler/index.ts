// ONNX -> plan compiler: public entry points.
import { modelSource, readModel } from '../onnx/proto';
import { CompileOptions, CompiledModel } from './compiled-model';
import { compileModel } from './compile';

export { CompileOptions, CompiledModel, CompiledInput, CompiledOutput } from './compiled-model';
export { UnsupportedModelError } from './unsupported-model-error';
export { compileModel } from './compile';

/** Reads an int8 ONNX model (file path or bytes) and compiles it to a plan. */
export function compile(pathOrBytes: string | Uint8Array, options: CompileOptions = {}): CompiledModel {
  return compileModel(readModel(pathOrBytes), { source: modelSource(pathOrBytes), ...options });
}
