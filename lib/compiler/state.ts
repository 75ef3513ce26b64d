// What the compiler builds while it reads a graph: the abstract value of every ONNX tensor (values.ts), the
// plan's tensors and ops so far, and the lookups and errors every stage shares.
import { NodeProto, describeNode, nodeName, DataType } from '../onnx/proto';
import { Dtype, PlanOp, PlanTensor } from '../plan';
import { f32 } from '../numerics/quantization';
import { ConstVal, Dims, Value } from './values';
import { chw } from './shapes';
import { UnsupportedModelError } from './unsupported-model-error';

/** A plan tensor's ONNX dims and every ONNX name it carries. */
export interface TensorInfo { dims: Dims; names: string[] }

/** The most values one tensor of an image may have (2^31 - 1: 2 GiB as int8, 4 GiB as int16; MobileNets need a few MB). */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

export class CompileState {
  readonly values = new Map<string, Value>();
  readonly tensors: PlanTensor[] = [];
  readonly info: TensorInfo[] = [];
  readonly ops: PlanOp[] = [];
  inputId = -1;
  /** values that still hold the NHWC graph input in ONNX terms (their dims are kept NCHW) */
  readonly nhwcValues = new Set<string>();
  readonly byName = new Map<string, number>();
  /** the node being compiled (named by errors); undefined before and after the nodes */
  node: NodeProto | undefined;

  fail(what: string, node: NodeProto | undefined = this.node): never {
    if (!node) throw new UnsupportedModelError(`model: ${what}`);
    throw new UnsupportedModelError(`${describeNode(node)}: ${what}`, { node: nodeName(node), opType: node.opType ?? '' });
  }

  get(name: string | null | undefined, what = 'input'): Value {
    if (!name) this.fail(`${what} is missing`);
    const v = this.values.get(name);
    if (!v) this.fail(`${what} '${name}' is not produced by any earlier node, initializer or graph input`);
    return v;
  }

  constOf(name: string | null | undefined, what: string): ConstVal {
    const v = this.get(name, what);
    if (v.kind !== 'const') this.fail(`${what} '${name}' must be a constant (initializer)`);
    return v;
  }

  scalarOf(name: string | null | undefined, what: string): number {
    const c = this.constOf(name, what);
    if (c.data.length !== 1) this.fail(`${what} '${name}' must be a scalar (per-tensor), has ${c.data.length} values`);
    return Number(c.data[0]);
  }

  /** A per-tensor scale: finite and > 0 as the float32 the runtime computes with. */
  scaleOf(name: string | null | undefined, what: string): number {
    const v = this.scalarOf(name, what);
    const v32 = f32(v);
    if (!(v32 > 0) || !Number.isFinite(v32)) {
      this.fail(`${what} '${name}' is ${v}${v32 !== v && !Number.isNaN(v) ? ` (${v32} as float32)` : ''}; scales must be finite and > 0`);
    }
    return v;
  }

  /**
   * Zero point (int8 domain; int16 for 16-bit types), whether the tensor type is uint8, and the plan dtype.
   * `wide`: int16 / uint16 are accepted (QDQ; uint16 is shifted to int16 as uint8 to int8).
   */
  zeroPointOf(name: string | null | undefined, what: string, wide = false): { zp: number; uint8: boolean; dtype: Dtype } {
    if (!name) return { zp: -128, uint8: true, dtype: Dtype.int8 }; // ONNX default: uint8 zero point 0
    const c = this.constOf(name, what);
    if (c.data.length !== 1) this.fail(`${what} '${name}' must be a scalar, has ${c.data.length} values`);
    if (c.dtype === DataType.UINT8) return { zp: Number(c.data[0]) - 128, uint8: true, dtype: Dtype.int8 };
    if (c.dtype === DataType.INT8) return { zp: Number(c.data[0]), uint8: false, dtype: Dtype.int8 };
    if (wide && c.dtype === DataType.INT16) return { zp: Number(c.data[0]), uint8: false, dtype: Dtype.int16 };
    if (wide && c.dtype === DataType.UINT16) return { zp: Number(c.data[0]) - 32768, uint8: false, dtype: Dtype.int16 };
    this.fail(`${what} '${name}' has type ${DataType[c.dtype]}; only int8 and uint8 activations are supported${wide ? ' (and int16 / uint16 in QuantizeLinear / DequantizeLinear)' : ' here'}`);
  }

  /** A plan tensor; an int16 one carries its dtype (int8 tensors leave it at the default). */
  newTensor(name: string, dims: Dims, scale: number, zeroPoint: number, dtype: Dtype = Dtype.int8): number {
    const [c, h, w] = chw(dims, () => this.fail(`tensor '${name}' has shape [${dims}], expected [1, C] or [1, C, H, W]`));
    if (![c, h, w].every((d) => Number.isSafeInteger(d) && d >= 1) || c * h * w > MAX_TENSOR_ELEMENTS) {
      this.fail(`tensor '${name}' has shape [${dims}]; mnq runs tensors of 1 to ${MAX_TENSOR_ELEMENTS} values per image`);
    }
    if (!(f32(scale) > 0) || !Number.isFinite(f32(scale))) this.fail(`tensor '${name}' has scale ${scale}; expected a positive finite number (as float32)`);
    const id = this.tensors.length;
    this.tensors.push({ name, h, w, c, scale: f32(scale), zeroPoint, ...(dtype === Dtype.int16 ? { dtype } : {}) });
    this.info.push({ dims, names: [name] });
    this.byName.set(name, id);
    return id;
  }

  alias(id: number, name: string): void {
    this.info[id].names.push(name);
    if (!this.byName.has(name)) this.byName.set(name, id);
  }

  /** The dtype of plan tensor `id`. */
  dtypeOf(id: number): Dtype {
    return this.tensors[id].dtype ?? Dtype.int8;
  }

  nodeName(): string {
    return this.node ? nodeName(this.node) : '?';
  }
}
