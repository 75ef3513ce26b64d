// ONNX Runtime sessions for calibration and comparison: one intra-op thread
// by default (MNQ_ORT_THREADS to change), models from bytes.
import * as ort from 'onnxruntime-node';

export { ort };

/**
 * `integerQdq`: run QDQ int8 graphs with ONNX Runtime's integer execution
 * (session.qdqisint8allowed = 1, its default on ARM). On x86 its default converts
 * int8 Q/DQ pairs to uint8 one pair at a time and runs some Conv / Add / Mul in
 * float32 between them, which is not the int8 model's arithmetic (README, Numerics).
 */
export async function session(bytes: Uint8Array, what = 'model', integerQdq = false): Promise<ort.InferenceSession> {
  const threads = Number(process.env.MNQ_ORT_THREADS || 1) || 1;
  try {
    return await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      ...(integerQdq ? { extra: { session: { qdqisint8allowed: '1' } } } : {}),
    });
  } catch (e) {
    throw new Error(`ONNX Runtime cannot load the ${what}: ${(e as Error).message}`);
  }
}

/** Runs a single-input model on one NCHW float image; returns the named outputs as Float32Arrays. */
export async function runFloat(
  s: ort.InferenceSession, input: Float32Array, shape: number[], outputs?: string[],
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const feeds: Record<string, ort.Tensor> = { [s.inputNames[0]]: new ort.Tensor('float32', input, shape) };
  const r = outputs ? await s.run(feeds, outputs) : await s.run(feeds);
  const res: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
  for (const [k, t] of Object.entries(r)) {
    res[k] = { data: t.data as Float32Array, dims: t.dims };
  }
  return res;
}
