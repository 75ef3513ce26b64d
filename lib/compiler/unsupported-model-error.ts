// The compiler's one error type: a model mnq cannot run.
import { NodeProto, OnnxFormatError, describeNode, nodeName } from '../onnx/proto';

/** Where in a model an error is: the node's name and ONNX op type, when there is one. */
export interface ModelErrorDetails {
  /** the ONNX node's name (or its first output's name when it has none) */
  node?: string;
  /** the node's ONNX op type, e.g. 'Conv' */
  opType?: string;
  /** set only when the error was made from another one (an internal error, the runtime's plan check) */
  cause?: unknown;
}

/**
 * A valid ONNX model that mnq cannot run: the message names the model (its file, or "model (N bytes)"), the node
 * and its op type, and what is missing.
 */
export class UnsupportedModelError extends Error {
  readonly node?: string;
  readonly opType?: string;

  constructor(message: string, details: ModelErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'UnsupportedModelError';
    if (details.node !== undefined) this.node = details.node;
    if (details.opType !== undefined) this.opType = details.opType;
  }
}

/**
 * An error of compiling the model `source` (its file name or "model (N bytes)") as the user sees it: mnq's own
 * errors with the source put first; any other error (a check the compiler lacks) as an UnsupportedModelError
 * naming the node being compiled, with the original as its cause.
 */
export function errorInModel(e: unknown, source: string, node: NodeProto | undefined): Error {
  if (e instanceof UnsupportedModelError) {
    return new UnsupportedModelError(`${source}: ${e.message}`, { node: e.node, opType: e.opType, cause: e.cause });
  }
  if (e instanceof OnnxFormatError) return new OnnxFormatError(`${source}: ${e.message}`);
  const err = e instanceof Error ? e : new Error(String(e));
  const where = node ? describeNode(node) : 'model';
  return new UnsupportedModelError(`${source}: ${where}: cannot be compiled (${err.name}: ${err.message})`, {
    ...(node ? { node: nodeName(node), opType: node.opType ?? '' } : {}), cause: err,
  });
}
