// Every ONNX Runtime session mnq opens goes through createSession: the kinds of session, each with its options.
// onnxruntime-node is an optional dependency, loaded on first use, so programs that never run ORT never load it
// (and run without it installed).
import type * as Ort from 'onnxruntime-node';
import { requireOptional } from '../optional-dependencies';
import { ModelProto, encodeModel, readModel } from '../onnx/proto';
import { needsU8U8, ortU8S8Saturates } from './cpu';

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
 * How ORT runs QDQ graphs (a float graph runs the same under each):
 * - 'exact': the graph's own integer arithmetic, the same on every CPU: ORT's integer QDQ execution (session option
 *   session.qdqisint8allowed = 1, its default on ARM), and where the graph has uint8 activations and ORT's uint8 x
 *   int8 kernels saturate on this CPU (x86 without VNNI) its exact U8U8 kernels (session.x64quantprecision = 1;
 *   needsU8U8 in lib/ort/cpu.ts). A graph ORT cannot run exactly here (uint8 and int8 activations on such a CPU)
 *   is an Error.
 * - 'integer': ORT's integer QDQ execution as ORT sets it up itself: on x86 without VNNI a graph with uint8
 *   activations saturates (bench's 'ort-int8': ORT's speed, not a reference).
 * - 'x86-default': ORT's x86 default, which converts int8 Q/DQ pairs to uint8 one pair at a time (whose kernels
 *   saturate on x86 without VNNI), so a Conv / Add next to a tensor read by several nodes no longer matches ORT's
 *   QLinear patterns and runs in float32 (DequantizeLinear -> float Conv -> QuantizeLinear): not an exact reference.
 * Default: 'exact' for 'calibration' and 'int8-reference' (what they measure of an int8 model must be what mnq
 * computes, on every CPU), 'x86-default' for 'classifier'.
 */
export type QdqExecution = 'exact' | 'integer' | 'x86-default';

export interface SessionOptions {
  /** intra-op threads (see SessionKind for each kind's default) */
  threads?: number;
  qdq?: QdqExecution;
  /** names the model in a load error: "ONNX Runtime cannot load the <what>: ..." (default: ORT's own error) */
  what?: string;
}

/** The ORT options of a session kind; `u8u8`: ORT's U8U8 kernels (see QdqExecution 'exact'). */
function sessionOptions(kind: SessionKind, qdq: QdqExecution, u8u8: boolean, threads?: number): Ort.InferenceSession.SessionOptions {
  const integer = qdq === 'x86-default' ? {}
    : { extra: { session: { qdqisint8allowed: '1', ...(u8u8 ? { x64quantprecision: '1' } : {}) } } };
  switch (kind) {
    case 'calibration':
      return {
        intraOpNumThreads: threads ?? (Number(process.env.MNQ_ORT_THREADS || 1) || 1),
        interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3, ...integer,
      };
    case 'int8-reference':
      return { intraOpNumThreads: threads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3, ...integer };
    case 'classifier':
      return { interOpNumThreads: 1, graphOptimizationLevel: 'all', ...(threads ? { intraOpNumThreads: threads } : {}), ...integer };
    default:
      throw new Error(`unknown ONNX Runtime session kind '${kind as string}'`);
  }
}

/**
 * Opens an ONNX model (a file, its bytes or the decoded model) in ONNX Runtime as a session of the given kind
 * (default: 'calibration').
 */
export async function createSession(model: string | Uint8Array | ModelProto, kind: SessionKind = 'calibration', options: SessionOptions = {}): Promise<Ort.InferenceSession> {
  const qdq = options.qdq ?? (kind === 'classifier' ? 'x86-default' : 'exact');
  const { InferenceSession } = ort();
  try {
    const decoded = typeof model === 'string' || model instanceof Uint8Array ? undefined : model;
    const source = decoded ? encodeModel(decoded) : model as string | Uint8Array;
    // the graph is read only where its activation types matter: needsU8U8 is false on every other CPU
    const u8u8 = qdq === 'exact' && ortU8S8Saturates() && needsU8U8((decoded ?? readModel(source)).graph ?? {});
    const so = sessionOptions(kind, qdq, u8u8, options.threads);
    return typeof source === 'string' ? await InferenceSession.create(source, so) : await InferenceSession.create(source, so);
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
