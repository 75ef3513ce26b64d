// Every ONNX Runtime session mnq opens goes through createSession: the kinds of session, each with its options.
// onnxruntime-node is an optional dependency, loaded on first use, so programs that never run ORT never load it
// (and run without it installed).
import type * as Ort from 'onnxruntime-node';
import { requireOptional } from '../optional-dependencies';

/** onnxruntime-node (loaded on first use); a MissingDependencyError when it is not installed. */
export function ort(): typeof Ort {
  return requireOptional<typeof Ort>('onnxruntime-node');
}

/**
 * The kinds of session:
 * - 'calibration': ORT as the float model (and the int8 model) of calibration, equalization, bias correction,
 *   GPTQ and compare, one image per run: MNQ_ORT_THREADS intra-op threads (default 1), one inter-op thread,
 *   sequential execution.
 * - 'int8-reference': the int8 reference mnq is checked against (check-ort, the parity tests, bench --vs-ort):
 *   `threads` intra-op threads (default 1), one inter-op thread.
 * - 'classifier': a float model classifying images (classify --engine ort, bench-classify --vs-ort): ORT's
 *   defaults but one inter-op thread; `threads` intra-op threads when given. ORT's warnings are not silenced.
 * All run ORT's full graph optimization ('all').
 */
export type SessionKind = 'calibration' | 'int8-reference' | 'classifier';

/**
 * How ORT runs QDQ graphs. 'integer': its integer QDQ execution (session option session.qdqisint8allowed = 1,
 * its default on ARM): the int8 model's arithmetic. 'x86-default': its x86 default, which converts int8 Q/DQ
 * pairs to uint8 one pair at a time, so a Conv / Add next to a tensor read by several nodes no longer matches
 * ORT's QLinear patterns and runs in float32 (DequantizeLinear -> float Conv -> QuantizeLinear): not an
 * integer-exact reference. Default: 'integer' for 'int8-reference', 'x86-default' otherwise.
 */
export type QdqExecution = 'integer' | 'x86-default';

export interface SessionOptions {
  /** intra-op threads (see SessionKind for each kind's default) */
  threads?: number;
  qdq?: QdqExecution;
  /** with qdq 'integer': ORT's U8U8 kernels (session.x64quantprecision = 1), exact where its uint8 x int8 ones
   * saturate (x86 without VNNI; see needsU8U8 in int8-reference.ts) */
  u8u8?: boolean;
  /** names the model in a load error: "ONNX Runtime cannot load the <what>: ..." (default: ORT's own error) */
  what?: string;
}


/** The ORT options of a session kind. */
export function sessionOptions(kind: SessionKind, options: SessionOptions = {}): Ort.InferenceSession.SessionOptions {
  const qdq = options.qdq ?? (kind === 'int8-reference' ? 'integer' : 'x86-default');
  const integer = qdq !== 'integer' ? {}
    : { extra: { session: { qdqisint8allowed: '1', ...(options.u8u8 ? { x64quantprecision: '1' } : {}) } } };
  switch (kind) {
    case 'calibration':
      return {
        intraOpNumThreads: options.threads ?? (Number(process.env.MNQ_ORT_THREADS || 1) || 1),
        interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3, ...integer,
      };
    case 'int8-reference':
      return { intraOpNumThreads: options.threads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3, ...integer };
    case 'classifier':
      return { interOpNumThreads: 1, graphOptimizationLevel: 'all', ...(options.threads ? { intraOpNumThreads: options.threads } : {}), ...integer };
    default:
      throw new Error(`unknown ONNX Runtime session kind '${kind as string}'`);
  }
}

/** Opens an ONNX file or bytes in ONNX Runtime as a session of the given kind (default: 'calibration'). */
export async function createSession(model: string | Uint8Array, kind: SessionKind = 'calibration', options: SessionOptions = {}): Promise<Ort.InferenceSession> {
  const so = sessionOptions(kind, options);
  const { InferenceSession } = ort();
  try {
    return typeof model === 'string' ? await InferenceSession.create(model, so) : await InferenceSession.create(model, so);
  } catch (e) {
    if (options.what === undefined) throw e;
    throw new Error(`ONNX Runtime cannot load the ${options.what}: ${(e as Error).message}`);
  }
}

/** Runs a single-input model on one float image; returns the named outputs (all by default) as Float32Arrays. */
export async function runFloat(
  s: Ort.InferenceSession, input: Float32Array, shape: number[], outputs?: string[],
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const feeds: Record<string, Ort.Tensor> = { [s.inputNames[0]]: new (ort().Tensor)('float32', input, shape) };
  const r = outputs ? await s.run(feeds, outputs) : await s.run(feeds);
  const res: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
  for (const [k, t] of Object.entries(r)) {
    res[k] = { data: t.data as Float32Array, dims: t.dims };
  }
  return res;
}
