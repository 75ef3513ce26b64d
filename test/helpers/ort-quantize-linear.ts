// ONNX Runtime's own QuantizeLinear, as the oracle for mnq's (lib/numerics/quantization.ts and the image
// pipeline's int8 tables). A session with ORT's default options: this tests ORT's operator itself.
import * as ort from 'onnxruntime-node';
import { onnx } from '../../lib/onnx/proto';

/** y = QuantizeLinear(x, scale, zp) with an int8 zp, run by ONNX Runtime. */
export async function ortQuantizeLinear(x: Float32Array, scale: number, zeroPoint: number): Promise<Int8Array> {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'q',
      node: [{ opType: 'QuantizeLinear', input: ['x', 's', 'zp'], output: ['y'], name: 'q' }],
      initializer: [
        { name: 's', dataType: onnx.TensorProto.DataType.FLOAT, dims: [], floatData: [scale] },
        { name: 'zp', dataType: onnx.TensorProto.DataType.INT8, dims: [], int32Data: [zeroPoint] },
      ],
      input: [{ name: 'x', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'n' }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: onnx.TensorProto.DataType.INT8, shape: { dim: [{ dimParam: 'n' }] } } } }],
    },
  });
  const bytes = onnx.ModelProto.encode(model).finish();
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, [x.length]) });
    return out.y.data as Int8Array;
  } finally {
    await session.release();
  }
}
