// ONNX protobuf access: decoding / encoding through the ONNX schema compiled with
// protobufjs (vendor/onnx-proto), plus typed helpers for tensors and
// attributes. Everything that reads or writes ONNX goes through here.
import * as fs from 'fs';
import { onnx } from '../../vendor/onnx-proto/onnx';

export { onnx };
export type ModelProto = onnx.ModelProto;
export type GraphProto = onnx.IGraphProto;
export type NodeProto = onnx.INodeProto;
export type TensorProto = onnx.ITensorProto;
export type AttributeProto = onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;

/** An error in an ONNX file: bad bytes, missing fields, unsupported content. */
export class OnnxFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxFormatError';
  }
}

type Longish = number | { toNumber(): number } | null | undefined;
/** protobufjs gives int64 as Long objects; convert to a JS number. */
export function toNum(v: Longish): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** How messages name a model: its file path, or "model (N bytes)" for bytes. */
export function modelSource(pathOrBytes: string | Uint8Array): string {
  return typeof pathOrBytes === 'string' ? pathOrBytes : `model (${pathOrBytes.length} bytes)`;
}

/** Decodes ONNX bytes; throws OnnxFormatError (never crashes) on malformed input. `source` names them in messages. */
export function decodeModel(bytes: Uint8Array, source = modelSource(bytes)): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new OnnxFormatError(`${source}: not a valid ONNX file (${(e as Error).message})`);
  }
  if (!model.graph || !model.graph.node) {
    throw new OnnxFormatError(`${source}: ONNX model has no graph`);
  }
  return model;
}

/** Reads an ONNX file or takes bytes. */
export function readModel(pathOrBytes: string | Uint8Array): onnx.ModelProto {
  if (typeof pathOrBytes === 'string') {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(pathOrBytes);
    } catch (e) {
      throw new OnnxFormatError(`cannot read model file '${pathOrBytes}': ${(e as Error).message}`);
    }
    return decodeModel(bytes, pathOrBytes);
  }
  if (!(pathOrBytes instanceof Uint8Array)) {
    throw new TypeError('model must be a file path (string) or ONNX bytes (Uint8Array)');
  }
  return decodeModel(pathOrBytes);
}

export function encodeModel(model: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** The default-domain opset version the model imports. */
export function opsetVersion(model: onnx.IModelProto): number {
  for (const o of model.opsetImport ?? []) {
    if (!o.domain || o.domain === 'ai.onnx') return toNum(o.version as Longish);
  }
  return 0;
}

export function dims(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => toNum(d as Longish));
}

/** The data types tensorData() reads. */
export const TENSOR_DATA_TYPES: ReadonlySet<number> = new Set([
  DataType.FLOAT, DataType.DOUBLE, DataType.INT8, DataType.UINT8, DataType.INT16, DataType.UINT16, DataType.INT32, DataType.INT64,
]);

export type TypedArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int32Array | BigInt64Array | Int16Array | Uint16Array;

/**
 * Tensor contents as a typed array of its element type (int64 as Int32Array
 * of the values when they fit — shapes, axes — else throws).
 * Copies, so the caller may keep it after the model is gone.
 */
export function tensorData(t: TensorProto): Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Float64Array {
  const n = dims(t).reduce((a, b) => a * b, 1);
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const name = t.name ?? '(unnamed)';
  const fromRaw = <T>(ctor: { new (b: ArrayBuffer, o: number, l: number): T; BYTES_PER_ELEMENT: number }): T => {
    if (!raw) throw new OnnxFormatError(`tensor '${name}': no data`);
    if (raw.length !== n * ctor.BYTES_PER_ELEMENT) {
      throw new OnnxFormatError(`tensor '${name}': raw data has ${raw.length} bytes, expected ${n * ctor.BYTES_PER_ELEMENT}`);
    }
    const copy = new Uint8Array(raw); // aligned copy
    return new ctor(copy.buffer, 0, n);
  };
  switch (t.dataType) {
    case DataType.FLOAT:
      return raw ? fromRaw(Float32Array) : checkLen(Float32Array.from(t.floatData ?? []), n, name);
    case DataType.DOUBLE:
      return raw ? fromRaw(Float64Array) : checkLen(Float64Array.from(t.doubleData ?? []), n, name);
    case DataType.INT8:
      return raw ? fromRaw(Int8Array) : checkLen(Int8Array.from(inRange(t.int32Data, -128, 127, name)), n, name);
    case DataType.UINT8:
      return raw ? fromRaw(Uint8Array) : checkLen(Uint8Array.from(inRange(t.int32Data, 0, 255, name)), n, name);
    case DataType.INT16:
      return raw ? fromRaw(Int16Array) : checkLen(Int16Array.from(inRange(t.int32Data, -32768, 32767, name)), n, name);
    case DataType.UINT16:
      return raw ? fromRaw(Uint16Array) : checkLen(Uint16Array.from(inRange(t.int32Data, 0, 65535, name)), n, name);
    case DataType.INT32:
      return raw ? fromRaw(Int32Array) : checkLen(Int32Array.from(t.int32Data ?? []), n, name);
    case DataType.INT64: {
      let vals: number[];
      if (raw) {
        const b = fromRaw(BigInt64Array);
        vals = Array.from(b, (v) => Number(v));
      } else {
        vals = (t.int64Data ?? []).map((v) => toNum(v as Longish));
      }
      const out = new Int32Array(vals.length);
      vals.forEach((v, i) => {
        if (!Number.isSafeInteger(v) || v > 2147483647 || v < -2147483648) {
          // clamp int64 sentinels (e.g. Slice ends = INT64_MAX) to int32 range
          out[i] = v > 0 ? 2147483647 : -2147483648;
        } else out[i] = v;
      });
      return checkLen(out, n, name);
    }
    default:
      throw new OnnxFormatError(`tensor '${name}': unsupported data type ${DataType[t.dataType ?? 0] ?? t.dataType}`);
  }
}

/** int32_data holding int8 / uint8 values: each must be in the type's range. */
function inRange(values: number[] | null | undefined, lo: number, hi: number, name: string): number[] {
  const v = values ?? [];
  const bad = v.findIndex((x) => !(x >= lo && x <= hi));
  if (bad >= 0) throw new OnnxFormatError(`tensor '${name}': int32_data[${bad}] = ${v[bad]} is outside [${lo}, ${hi}]`);
  return v;
}

function checkLen<T extends { length: number }>(a: T, n: number, name: string): T {
  if (a.length !== n) throw new OnnxFormatError(`tensor '${name}': has ${a.length} values, shape says ${n}`);
  return a;
}

/** Makes a TensorProto from a typed array (raw_data encoding). */
export function makeTensor(name: string, shape: number[], data: Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array): onnx.TensorProto {
  let dataType: number;
  if (data instanceof Float32Array) dataType = DataType.FLOAT;
  else if (data instanceof Int8Array) dataType = DataType.INT8;
  else if (data instanceof Uint8Array) dataType = DataType.UINT8;
  else if (data instanceof Int16Array) dataType = DataType.INT16;
  else if (data instanceof Uint16Array) dataType = DataType.UINT16;
  else if (data instanceof Int32Array) dataType = DataType.INT32;
  else dataType = DataType.INT64;
  return onnx.TensorProto.create({
    name,
    dims: shape,
    dataType,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
  });
}

export interface AttrValue {
  f?: number;
  i?: number;
  s?: string;
  floats?: number[];
  ints?: number[];
  t?: TensorProto;
}

/** Attribute lookup with typed results. */
export function attr(node: NodeProto, name: string): AttrValue | undefined {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  if (!a) return undefined;
  return {
    f: a.f ?? undefined,
    i: a.i !== undefined && a.i !== null ? toNum(a.i as Longish) : undefined,
    s: a.s && a.s.length ? Buffer.from(a.s).toString('utf8') : undefined,
    floats: a.floats ?? undefined,
    ints: (a.ints ?? []).map((v) => toNum(v as Longish)),
    t: a.t ?? undefined,
  };
}
export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a?.i ?? dflt;
}
export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a?.f ?? dflt;
}
export function attrInts(node: NodeProto, name: string, dflt: number[]): number[] {
  const a = attr(node, name);
  return a?.ints && a.ints.length ? a.ints : dflt;
}
export function attrString(node: NodeProto, name: string, dflt: string): string {
  return attr(node, name)?.s ?? dflt;
}

/**
 * The dims of a graph input / output (value info): a positive dim_value as a number, else its dim_param, else
 * `unknown(i, value)` (value: the dim_value, 0 when there is none).
 */
export function valueInfoShape(v: onnx.IValueInfoProto | null | undefined, unknown: (i: number, value: number) => number | string): (number | string)[] {
  return (v?.type?.tensorType?.shape?.dim ?? []).map((d, i) => {
    const n = toNum(d.dimValue as Longish);
    return n > 0 ? n : d.dimParam || unknown(i, n);
  });
}

/**
 * The nodes between an NHWC image input and its Transpose(perm [0, 3, 1, 2]) to NCHW, as tf2onnx exports Keras
 * models: a chain of single-consumer QuantizeLinear / DequantizeLinear / Identity and elementwise Mul / Add / Sub /
 * Div (a rescale) nodes, then only such Transposes; null when the input does not reach one that way. Decided by
 * the graph, not by the shape (an NCHW input may well be 3 pixels wide).
 */
export function nhwcInputChain(graph: { node?: onnx.INodeProto[] | null }, input: string): { chain: onnx.INodeProto[]; transposes: onnx.INodeProto[] } | null {
  const nodes = graph.node ?? [];
  const consumers = (t: string) => nodes.filter((n) => (n.input ?? []).includes(t));
  const chain: onnx.INodeProto[] = [];
  let cur = input;
  for (let guard = 0; guard < nodes.length + 1; guard++) {
    const cons = consumers(cur);
    if (!cons.length) return null;
    if (cons.every((n) => n.opType === 'Transpose' && attrInts(n as NodeProto, 'perm', []).join() === '0,3,1,2')) return { chain, transposes: cons };
    if (cons.length !== 1 || !['QuantizeLinear', 'DequantizeLinear', 'Identity', 'Mul', 'Add', 'Sub', 'Div'].includes(cons[0].opType ?? '')) return null;
    chain.push(cons[0]);
    cur = cons[0].output?.[0] ?? '';
  }
  return null;
}

/**
 * A Pad that only zero-pads height and width of an NCHW tensor (Keras' ZeroPadding2D): its [top, left, bottom,
 * right], else null. `pads` in ONNX order [n, c, h, w begins, n, c, h, w ends]; `value` the constant value(s).
 */
export function zeroPadHW(mode: string, pads: ArrayLike<number> | null, value: ArrayLike<number>): number[] | null {
  if (mode !== 'constant' || !pads || pads.length !== 8 || value.length !== 1 || value[0] !== 0) return null;
  if (pads[0] || pads[1] || pads[4] || pads[5] || Array.from(pads).some((p) => p < 0)) return null;
  return [pads[2], pads[3], pads[6], pads[7]];
}

/** A node's name for messages: its name, else its first output's name. */
export function nodeName(node: NodeProto): string {
  return node.name || node.output?.[0] || '?';
}

/** A node's printable identity for error messages: "Conv node 'conv1'". */
export function describeNode(node: NodeProto): string {
  const dom = node.domain ? `${node.domain}.` : '';
  return `${dom}${node.opType} node '${nodeName(node)}'`;
}
