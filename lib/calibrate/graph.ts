// A small mutable view of an ONNX graph for the calibration passes: nodes in a
// list, initializers in a map (decoded lazily to typed arrays), plus the
// producer/consumer queries the rewrites need. Converted back to a ModelProto
// by toModel().
import {
  onnx, ModelProto, NodeProto, TensorProto, tensorData, dims as tensorDims, makeTensor,
} from '../onnx/proto';
import { makeNode } from '../onnx/writer';

export class Graph {
  nodes: NodeProto[];
  inits = new Map<string, TensorProto>();
  inputs: onnx.IValueInfoProto[];
  outputs: onnx.IValueInfoProto[];
  /**
   * ranges outside which a tensor's values do not matter (set by rewrites that know, e.g. the h-swish
   * split: the scaled Conv output is multiplied by a gate that is 0 where it is below −3·s)
   */
  rangeHints = new Map<string, { lo: number; hi: number; channelLo?: Float32Array }>();
  private cache = new Map<string, Float32Array>();
  private counter = 0;

  constructor(readonly model: ModelProto) {
    const g = model.graph!;
    this.nodes = (g.node ?? []).map((n) => onnx.NodeProto.create({
      ...n, input: [...(n.input ?? [])], output: [...(n.output ?? [])], attribute: [...(n.attribute ?? [])],
    }));
    for (const t of g.initializer ?? []) this.inits.set(t.name!, t);
    this.inputs = (g.input ?? []).filter((i) => !this.inits.has(i.name!));
    this.outputs = [...(g.output ?? [])];
  }

  /** A fresh tensor/node name based on `base`. */
  fresh(base: string): string {
    const used = (n: string) => this.inits.has(n) || this.nodes.some((x) => x.output?.includes(n) || x.name === n);
    let name = base;
    while (used(name)) name = `${base}_${++this.counter}`;
    return name;
  }

  isConst(name: string): boolean { return this.inits.has(name); }

  /** Float contents of a constant (any numeric type converted), or null when `name` is not constant. */
  constF(name: string): Float32Array | null {
    if (!name) return null;
    const c = this.cache.get(name);
    if (c) return c;
    const t = this.inits.get(name);
    if (!t) return null;
    const d = tensorData(t);
    const f = d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
    this.cache.set(name, f);
    return f;
  }
  constDims(name: string): number[] { return tensorDims(this.inits.get(name)!); }
  /** A scalar (or all-equal) constant's value, else null. */
  scalar(name: string): number | null {
    const v = this.constF(name);
    if (!v || v.length === 0) return null;
    for (let i = 1; i < v.length; i++) if (v[i] !== v[0]) return null;
    return v[0];
  }

  setConst(name: string, shape: number[], data: Float32Array | Int8Array | Int16Array | Int32Array | Uint8Array): void {
    this.inits.set(name, makeTensor(name, shape, data));
    if (data instanceof Float32Array) this.cache.set(name, data);
    else this.cache.delete(name);
  }
  addConst(base: string, shape: number[], data: Float32Array | Int8Array | Int16Array | Int32Array | Uint8Array): string {
    const name = this.fresh(base);
    this.setConst(name, shape, data);
    return name;
  }

  producer(tensor: string): NodeProto | undefined {
    return this.nodes.find((n) => n.output?.includes(tensor));
  }
  consumers(tensor: string): NodeProto[] {
    return this.nodes.filter((n) => n.input?.includes(tensor));
  }
  isGraphOutput(tensor: string): boolean { return this.outputs.some((o) => o.name === tensor); }
  /** Only consumer of `tensor` (and not a graph output), else undefined. */
  soleConsumer(tensor: string): NodeProto | undefined {
    if (this.isGraphOutput(tensor)) return undefined;
    const c = this.consumers(tensor);
    return c.length === 1 ? c[0] : undefined;
  }

  /** Every use of tensor `from` reads `to` instead. */
  replaceUses(from: string, to: string): void {
    for (const n of this.nodes) n.input = n.input!.map((x) => (x === from ? to : x));
  }

  /**
   * Removes `node`, whose output `out` becomes the same tensor as `src`.
   * Keeps graph output names: if `out` is a graph output, src's producer writes `out` instead.
   */
  bypass(node: NodeProto, src: string, out = node.output![0]): void {
    this.remove(node);
    if (this.isGraphOutput(out)) {
      const p = this.producer(src);
      if (p && !this.isGraphOutput(src)) {
        p.output = p.output!.map((x) => (x === src ? out : x));
        this.replaceUses(src, out);
        return;
      }
      // graph input straight to output: keep an Identity
      this.nodes.push(makeNode('Identity', this.fresh(`${out}_identity`), [src], [out]));
      return;
    }
    this.replaceUses(out, src);
  }

  remove(node: NodeProto): void {
    const i = this.nodes.indexOf(node);
    if (i >= 0) this.nodes.splice(i, 1);
  }

  /** Drops nodes whose outputs nobody uses, and unused initializers. */
  prune(): void {
    for (;;) {
      const used = new Set<string>(this.outputs.map((o) => o.name!));
      for (const n of this.nodes) for (const i of n.input!) used.add(i);
      const before = this.nodes.length;
      this.nodes = this.nodes.filter((n) => n.output!.some((o) => used.has(o)));
      if (this.nodes.length === before) {
        for (const k of [...this.inits.keys()]) if (!used.has(k)) { this.inits.delete(k); this.cache.delete(k); }
        return;
      }
    }
  }

  /** Sorts nodes topologically (stable). Throws on a cycle or a missing input. */
  sort(): void {
    const avail = new Set<string>([...this.inputs.map((i) => i.name!), ...this.inits.keys(), '']);
    const out: NodeProto[] = [];
    let rest = this.nodes;
    while (rest.length) {
      const next: NodeProto[] = [];
      for (const n of rest) {
        if (n.input!.every((i) => avail.has(i))) { out.push(n); for (const o of n.output!) avail.add(o); } else next.push(n);
      }
      if (next.length === rest.length) {
        const n = next[0];
        throw new Error(`graph: node '${n.name}' (${n.opType}) has an input no node produces: ${n.input!.filter((i) => !avail.has(i)).join(', ')}`);
      }
      rest = next;
    }
    this.nodes = out;
  }

  toModel(extra?: { opset?: number; metadata?: Record<string, string> }): ModelProto {
    this.sort();
    const g = this.model.graph!;
    const graph = onnx.GraphProto.create({
      name: g.name || 'graph',
      node: this.nodes,
      initializer: [...this.inits.values()],
      input: this.inputs,
      output: this.outputs,
    });
    let opsetImport = this.model.opsetImport ?? [];
    if (extra?.opset) {
      opsetImport = opsetImport.filter((o) => o.domain && o.domain !== 'ai.onnx');
      opsetImport = [onnx.OperatorSetIdProto.create({ domain: '', version: extra.opset }), ...opsetImport];
    }
    const meta = [...(this.model.metadataProps ?? [])];
    for (const [key, value] of Object.entries(extra?.metadata ?? {})) {
      const i = meta.findIndex((m) => m.key === key);
      const e = onnx.StringStringEntryProto.create({ key, value });
      if (i >= 0) meta[i] = e; else meta.push(e);
    }
    return onnx.ModelProto.create({
      irVersion: this.model.irVersion && Number(this.model.irVersion) >= 7 ? this.model.irVersion : 7,
      producerName: this.model.producerName || 'mnq',
      producerVersion: this.model.producerVersion || '',
      opsetImport,
      metadataProps: meta,
      graph,
    });
  }
}
