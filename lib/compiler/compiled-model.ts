// What the compiler returns (a plan and how the ONNX graph's input and outputs map onto it) and its options.
import { PlanDesc } from '../plan';

export interface CompileOptions {
  /**
   * ONNX names of int8 tensors (QuantizeLinear / QLinear* outputs, or the
   * DequantizeLinear outputs reading them) to keep alive and return after the
   * model outputs, or 'all' for every int8 tensor (no fusion then).
   */
  keep?: string[] | 'all';
  /**
   * [height, width] of the input when the model leaves them dynamic. Default: the `size` of the
   * preprocessing in the model's metadata (`mnq.preprocess`, as `mnq calibrate` writes it).
   */
  inputSize?: [number, number];
  /** How error messages name the model (its file name); default 'model'. compile() and load() set it. */
  source?: string;
}

export type Dim = number | string;

export interface CompiledInput {
  name: string;
  shape: Dim[]; // ONNX shape, batch first: [N, C, H, W], or [N, H, W, C] when layout is 'nhwc'
  /**
   * 'nhwc': the graph takes [N, H, W, C] images and transposes them to NCHW (Transpose perm [0, 3, 1, 2],
   * before or after the input's QuantizeLinear / DequantizeLinear), as tf2onnx writes Keras models;
   * the plan's input is NHWC in either case (its kernels' layout), so that Transpose costs nothing.
   */
  layout: 'nchw' | 'nhwc';
  c: number;
  h: number;
  w: number;
  scale: number; // QuantizeLinear of the input
  zeroPoint: number; // int8 domain
}

export interface CompiledOutput {
  name: string;
  shape: Dim[]; // ONNX shape, batch first
  tensor: number; // plan tensor id
  /** The ONNX layout of one image's output: [c, h, w]; when h * w > 1 the plan's NHWC data must be transposed. */
  c: number;
  h: number;
  w: number;
  /** The graph applies Softmax after the final DequantizeLinear. */
  softmax: boolean;
  /**
   * The graph quantizes that Softmax again (DQ -> Softmax -> Q [-> DQ], as ONNX Runtime's quantizer
   * writes a Softmax): its QuantizeLinear's parameters. ORT computes this Softmax in float32 between
   * the DQ and the Q, and so does mnq's output stage (lib/model.ts); the plan ends at the logits.
   */
  softmaxQuantization?: { scale: number; zeroPoint: number };
}

export interface CompiledModel {
  plan: PlanDesc;
  input: CompiledInput;
  outputs: CompiledOutput[];
  /**
   * Kept intermediate tensors (CompileOptions.keep), in plan order, after the outputs in plan.outputs.
   * `pieces`: the plan stores the tensor piece-major (ONNX channel c * pieces + j at j * C + c, see
   * PlanOp.inputPieces); readers of the kept data restore the ONNX order.
   */
  kept: { name: string; tensor: number; pieces?: number }[];
}
