// Constants: initializers and Constant nodes as const values, and the small shape / index arithmetic on them
// that exporters write (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), folded at compile time.
import { NodeProto, OnnxFormatError, TensorProto, TENSOR_DATA_TYPES, attr, attrInt, dims as tensorDims, tensorData, DataType } from '../onnx/proto';
import { f32 } from '../numerics/quantization';
import { CompileState } from './state';
import { reshapeDims } from './shapes';
import { ConstVal, Dims, Value } from './values';
import { UnsupportedModelError } from './unsupported-model-error';

/**
 * A tensor (initializer or Constant value) as a constant. A data type ONNX does not define, or data that does not
 * match the dims: OnnxFormatError; a defined type mnq does not read (float16, bool, string ...): UnsupportedModelError.
 */
export function constFromTensor(t: TensorProto): ConstVal {
  const dt = t.dataType ?? 0;
  if (!(dt in DataType) || dt === DataType.UNDEFINED) throw new OnnxFormatError(`tensor '${t.name}': data type ${dt} is not an ONNX data type`);
  if (!TENSOR_DATA_TYPES.has(dt)) {
    throw new UnsupportedModelError(`tensor '${t.name}' has data type ${DataType[dt]}; mnq reads float, double, int8, uint8, int16, uint16, int32 and int64 tensors`);
  }
  const d = tensorDims(t);
  if (d.some((n) => !Number.isSafeInteger(n) || n < 0)) throw new OnnxFormatError(`tensor '${t.name}' has dims [${d}]; dims must be integers >= 0`);
  return { kind: 'const', data: tensorData(t), dtype: dt, dims: d };
}

export function constantNode(s: CompileState, node: NodeProto): ConstVal {
  const t = attr(node, 'value')?.t;
  if (t) return constFromTensor(t);
  const f = attr(node, 'value_float')?.f;
  if (f !== undefined) return { kind: 'const', data: Float32Array.of(f), dtype: DataType.FLOAT, dims: [] };
  const ints = attr(node, 'value_ints')?.ints;
  if (ints && ints.length) return { kind: 'const', data: Int32Array.from(ints), dtype: DataType.INT64, dims: [ints.length] };
  const i = attr(node, 'value_int')?.i;
  if (i !== undefined) return { kind: 'const', data: Int32Array.of(i), dtype: DataType.INT64, dims: [] };
  s.fail('Constant without a supported value attribute (value, value_float, value_int, value_ints)');
}

/** Constant folding of small shape / index arithmetic (Shape -> Gather -> Unsqueeze -> Concat -> Reshape). */
export function foldShapeOp(s: CompileState, node: NodeProto): Value {
  const inp = node.input ?? [];
  const c = (i: number) => s.constOf(inp[i], `input ${i}`);
  const vals = (v: ConstVal) => Array.from(v.data as ArrayLike<number>);
  const mk = (data: number[], dims: Dims, dtype = DataType.INT64): ConstVal => ({
    kind: 'const', data: dtype === DataType.FLOAT ? Float32Array.from(data) : Int32Array.from(data), dtype, dims,
  });
  switch (node.opType) {
    case 'Gather': {
      const d = c(0), idx = c(1);
      if (d.dims.length > 1) s.fail('Gather on constants is supported for 1-D shape vectors only');
      const v = vals(d);
      const out = vals(idx).map((i) => v[i < 0 ? i + v.length : i]);
      return mk(out, idx.dims, d.dtype);
    }
    case 'Unsqueeze': case 'Squeeze': case 'Flatten': case 'Reshape': {
      const d = c(0);
      return { ...d, dims: reshapeDims(s, node, d.dims) };
    }
    case 'Concat': {
      const parts = inp.map((_, i) => c(i));
      return mk(parts.flatMap(vals), [parts.reduce((a, p) => a + p.data.length, 0)], parts[0].dtype);
    }
    case 'Cast': {
      const d = c(0);
      const to = attrInt(node, 'to', DataType.FLOAT);
      return mk(vals(d), d.dims, to === DataType.FLOAT ? DataType.FLOAT : DataType.INT64);
    }
    case 'Slice': {
      const d = c(0);
      const v = vals(d);
      const starts = vals(c(1)), ends = vals(c(2));
      if (d.dims.length !== 1) s.fail('Slice on constants is supported for 1-D shape vectors only');
      const st = Math.max(0, starts[0] < 0 ? starts[0] + v.length : starts[0]);
      const e = Math.min(v.length, ends[0] < 0 ? ends[0] + v.length : ends[0]);
      const out = v.slice(st, e);
      return mk(out, [out.length], d.dtype);
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div': {
      const a = vals(c(0)), b = vals(c(1));
      const n = Math.max(a.length, b.length);
      const f = { Add: (x: number, y: number) => x + y, Sub: (x: number, y: number) => x - y, Mul: (x: number, y: number) => x * y, Div: (x: number, y: number) => x / y }[node.opType as 'Add'];
      const isFloat = c(0).dtype === DataType.FLOAT;
      const out = Array.from({ length: n }, (_, i) => {
        const r = f(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i]);
        return isFloat ? f32(r) : Math.trunc(r);
      });
      return mk(out, a.length >= b.length ? c(0).dims : c(1).dims, c(0).dtype);
    }
    default:
      s.fail('this operator is supported only on constants (shape arithmetic)');
  }
}
