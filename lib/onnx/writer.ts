// Building ONNX: attributes, value infos and nodes (makeAttribute, makeValueInfo, makeNode), and a small graph
// writer on top of them: add nodes, initializers, inputs/outputs and value infos, then get a ModelProto (or
// bytes, or a file written atomically). General purpose: the model builder writes graphs with GraphWriter, the
// calibrator edits graphs with the builders.
import * as fs from 'fs';
import * as path from 'path';
import { onnx, makeTensor, encodeModel } from './proto';

/** One attribute value with its ONNX type made explicit (1 vs 1.0 matters). */
export type Attr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] }
  | { t: onnx.ITensorProto };

export const int = (i: number): Attr => ({ i });
export const float = (f: number): Attr => ({ f });
export const ints = (v: number[]): Attr => ({ ints: v });
export const floats = (v: number[]): Attr => ({ floats: v });
export const str = (s: string): Attr => ({ s });

export function makeAttribute(name: string, a: Attr): onnx.AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in a) {
    if (!Number.isInteger(a.i)) throw new Error(`attribute '${name}': int value ${a.i} is not an integer`);
    return onnx.AttributeProto.create({ name, type: T.INT, i: a.i });
  }
  if ('f' in a) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: a.f });
  if ('s' in a) return onnx.AttributeProto.create({ name, type: T.STRING, s: Buffer.from(a.s, 'utf8') });
  if ('ints' in a) return onnx.AttributeProto.create({ name, type: T.INTS, ints: a.ints });
  if ('floats' in a) return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: a.floats });
  return onnx.AttributeProto.create({ name, type: T.TENSOR, t: a.t });
}

/** A dimension: a number, or a name for a symbolic (dynamic) dimension such as the batch. */
export type Dim = number | string;

/** A graph input / output / value info of a tensor type (float unless given); `shape` null: no shape. */
export function makeValueInfo(name: string, elemType: number = onnx.TensorProto.DataType.FLOAT, shape: Dim[] | null = null): onnx.ValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType };
  if (shape) {
    tensorType.shape = {
      dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })),
    };
  }
  return onnx.ValueInfoProto.create({ name, type: { tensorType } });
}

/** A node; `domain` is set only when given (the default domain otherwise). */
export function makeNode(opType: string, name: string, inputs: string[], outputs: string[],
  attrs: Record<string, Attr> = {}, domain?: string): onnx.NodeProto {
  return onnx.NodeProto.create({
    name,
    opType,
    ...(domain !== undefined ? { domain } : {}),
    input: inputs,
    output: outputs,
    attribute: Object.entries(attrs).map(([k, v]) => makeAttribute(k, v)),
  });
}

/** Sets one attribute of a node (replacing an attribute of that name). */
export function setAttribute(node: onnx.INodeProto, name: string, a: Attr): void {
  node.attribute = [...(node.attribute ?? []).filter((x) => x.name !== name), makeAttribute(name, a)];
}

export interface GraphWriterOptions {
  /** Graph name. */
  name?: string;
  /** Default-domain opset version (e.g. 13, 17). */
  opset: number;
  /** Extra opset imports, e.g. { 'com.microsoft': 1 }. */
  extraOpsets?: Record<string, number>;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

/** IR version that matches an opset (ONNX's own table). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 9) return 4;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

export class GraphWriter {
  readonly opset: number;
  private readonly opts: GraphWriterOptions;
  private readonly nodes: onnx.NodeProto[] = [];
  private readonly inits: onnx.TensorProto[] = [];
  private readonly inputs: onnx.ValueInfoProto[] = [];
  private readonly outputs: onnx.ValueInfoProto[] = [];
  private readonly valueInfos: onnx.ValueInfoProto[] = [];
  private readonly metadata = new Map<string, string>();
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(opts: GraphWriterOptions) {
    if (!Number.isInteger(opts.opset) || opts.opset < 7) throw new Error(`opset must be an integer >= 7, got ${opts.opset}`);
    this.opset = opts.opset;
    this.opts = opts;
  }

  /** A fresh value name starting with `base` (never repeats a name used in this graph). */
  uniqueName(base: string): string {
    let n = base;
    while (this.names.has(n)) n = `${base}_${++this.counter}`;
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX graph: name '${name}' is already used`);
    this.names.add(name);
    return name;
  }

  input(name: string, shape: Dim[], elemType: number = onnx.TensorProto.DataType.FLOAT): string {
    this.inputs.push(makeValueInfo(this.claim(name), elemType, shape));
    return name;
  }

  /** Declares a graph output; the value must be produced by some node. */
  output(name: string, shape: Dim[] | null, elemType: number = onnx.TensorProto.DataType.FLOAT): string {
    this.outputs.push(makeValueInfo(name, elemType, shape));
    return name;
  }

  valueInfo(name: string, shape: Dim[] | null, elemType: number = onnx.TensorProto.DataType.FLOAT): void {
    this.valueInfos.push(makeValueInfo(name, elemType, shape));
  }

  /** Adds a constant tensor; returns its (unique) name. */
  initializer(name: string, shape: number[], data: Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array): string {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`initializer '${name}': ${data.length} values for shape [${shape}]`);
    const unique = this.uniqueName(name);
    this.inits.push(makeTensor(unique, shape, data));
    return unique;
  }

  /** Adds a ready-made TensorProto (its name must be new). */
  addTensor(t: onnx.ITensorProto): string {
    this.claim(t.name ?? '');
    this.inits.push(onnx.TensorProto.create(t));
    return t.name as string;
  }

  /**
   * Adds a node. `outputs` are names or a count (fresh names from the node name).
   * Returns the output names.
   */
  node(opType: string, inputs: string[], outputs: string[] | number = 1,
    attrs: Record<string, Attr> = {}, opts: { name?: string; domain?: string } = {}): string[] {
    const name = this.uniqueName(opts.name ?? opType);
    const outs = typeof outputs === 'number'
      ? Array.from({ length: outputs }, (_, i) => this.uniqueName(outputs === 1 ? `${name}_output` : `${name}_output_${i}`))
      : outputs.map((o) => this.claim(o));
    this.nodes.push(makeNode(opType, name, inputs, outs, attrs, opts.domain ?? ''));
    return outs;
  }

  /** Single-output shorthand for node(). */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, name?: string): string {
    return this.node(opType, inputs, 1, attrs, { name })[0];
  }

  setMetadata(key: string, value: string): void {
    this.metadata.set(key, value);
  }

  toModel(): onnx.ModelProto {
    const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: this.opset }];
    for (const [domain, version] of Object.entries(this.opts.extraOpsets ?? {})) opsetImport.push({ domain, version });
    return onnx.ModelProto.create({
      irVersion: irVersionForOpset(this.opset),
      opsetImport,
      producerName: this.opts.producerName ?? 'mnq',
      producerVersion: this.opts.producerVersion ?? '',
      docString: this.opts.docString ?? '',
      graph: {
        name: this.opts.name ?? 'graph',
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
        valueInfo: this.valueInfos,
      },
      metadataProps: [...this.metadata].map(([key, value]) => ({ key, value })),
    });
  }

  toBytes(): Uint8Array {
    return encodeModel(this.toModel());
  }
}

/**
 * Writes bytes to `file` atomically: a temporary file in the same folder,
 * renamed over the target. On any error nothing is left behind.
 */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* not created */ }
    throw new Error(`cannot write '${file}': ${(e as Error).message}`);
  }
}

/** Encodes a model and writes it atomically. */
export function writeModel(file: string, model: onnx.IModelProto): void {
  writeFileAtomic(file, encodeModel(model));
}
