// Running an int8 ONNX model through ONNX Runtime (onnxruntime-node) with its
// int8 tensors exposed as extra graph outputs: the tensor before each final
// DequantizeLinear, and optionally any intermediate int8 tensor. This is the
// reference mnq's parity checks (tests, `mnq check-ort`) compare against.
import { onnx, readModel, DataType } from '../onnx/proto';
import { makeValueInfo } from '../onnx/writer';
import { OUTPUT_ZERO_POINT, needsU8U8 } from './cpu';
import { createSession, ort } from './session';

export interface OrtInt8Session {
  /** For each graph output: the name of the int8 tensor before its final DequantizeLinear. */
  readonly int8Outputs: string[];
  /** Extra int8 tensors requested (those ORT could expose). */
  readonly extra: string[];
  /** How ORT runs the graph, for reports: 'integer QDQ', 'integer QDQ, U8U8 kernels', or 'x86 default QDQ'. */
  readonly mode: string;
  /** Runs a float NCHW batch; returns every int8 tensor (int8 domain: uint8 - 128) by name, with its dims. */
  run(input: Float32Array, shape: number[]): Promise<Map<string, { data: Int8Array; dims: number[] }>>;
  release(): Promise<void>;
}

/** The int8 tensor a float graph output dequantizes (through Reshape / Flatten / Squeeze / Softmax / Identity). */
export function int8SourceOf(graph: onnx.IGraphProto, output: string): string | null {
  const producer = new Map<string, onnx.INodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producer.set(o, n);
  let name = output;
  for (let i = 0; i < 16; i++) {
    const n = producer.get(name);
    if (!n) return null;
    if (n.opType === 'DequantizeLinear') return n.input?.[0] ?? null;
    if (['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Softmax', 'Identity'].includes(n.opType ?? '')) {
      name = n.input?.[0] ?? '';
      continue;
    }
    return null;
  }
  return null;
}

/** Element type of an int8/uint8 tensor produced by QuantizeLinear or a QLinear* node. */
function int8Type(graph: onnx.IGraphProto, name: string): number | null {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const n of graph.node ?? []) {
    if (!(n.output ?? []).includes(name)) continue;
    const inp = n.input ?? [];
    if (n.opType && OUTPUT_ZERO_POINT[n.opType] !== undefined) {
      const zp = inp[OUTPUT_ZERO_POINT[n.opType]];
      if (!zp) return DataType.UINT8;
      return inits.get(zp)?.dataType ?? null;
    }
    if (['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Transpose', 'MaxPool'].includes(n.opType ?? '')) return int8Type(graph, inp[0]);
    return null;
  }
  return null;
}

/**
 * Opens the model in ONNX Runtime (an 'int8-reference' session, lib/ort/session.ts) with the int8 tensors as
 * outputs. `extra`: intermediate int8 tensor names to expose too (silently dropped if ORT cannot type them).
 *
 * ORT runs the graph's exact integer arithmetic (QdqExecution 'exact': its integer QDQ execution, with its
 * U8U8 kernels for uint8 activations on an x86 CPU whose uint8 x int8 kernels saturate; int8 activations must
 * not get them: ORT would move their weights to uint8 too and find no int8 x uint8 QLinearConv). A graph with
 * both kinds of activation cannot be run exactly on such a CPU: an Error says so.
 * With ORT's x86 default (`x86Default`, QdqExecution 'x86-default') some Convs / Adds run in float32: the
 * result then depends on float summation order and is not an integer-exact reference.
 */
export async function openOrtInt8(pathOrBytes: string | Uint8Array, extra: string[] = [], threads = 1,
  x86Default = process.env.MNQ_ORT_X86_DEFAULT === '1'): Promise<OrtInt8Session> {
  const model = readModel(pathOrBytes);
  const g = model.graph!;
  const int8Outputs = (g.output ?? []).map((o) => {
    const s = int8SourceOf(g, o.name ?? '');
    if (!s) throw new Error(`graph output '${o.name}' is not a DequantizeLinear of an int8 tensor`);
    return s;
  });
  const u8u8 = !x86Default && needsU8U8(g);
  const existing = new Set((g.output ?? []).map((o) => o.name));
  const exposed: string[] = [];
  const extraOk: string[] = [];
  for (const name of [...int8Outputs, ...extra]) {
    if (existing.has(name) || exposed.includes(name)) { if (!int8Outputs.includes(name)) extraOk.push(name); continue; }
    const t = int8Type(g, name);
    if (t === null) continue;
    g.output!.push(makeValueInfo(name, t));
    exposed.push(name);
    if (!int8Outputs.includes(name)) extraOk.push(name);
  }
  const session = await createSession(model, 'int8-reference', { threads, qdq: x86Default ? 'x86-default' : 'exact' });
  const { Tensor } = ort();
  const inputName = session.inputNames[0];
  return {
    int8Outputs,
    extra: extraOk,
    mode: x86Default ? 'x86 default QDQ' : u8u8 ? 'integer QDQ, U8U8 kernels' : 'integer QDQ',
    async run(input, shape) {
      const res = await session.run({ [inputName]: new Tensor('float32', input, shape) });
      const out = new Map<string, { data: Int8Array; dims: number[] }>();
      for (const name of [...int8Outputs, ...extraOk]) {
        const t = res[name];
        if (!t) continue;
        let data: Int8Array;
        if (t.type === 'uint8') data = Int8Array.from(t.data as Uint8Array, (v) => v - 128);
        else if (t.type === 'int8') data = Int8Array.from(t.data as Int8Array);
        else throw new Error(`ORT tensor '${name}' has type ${t.type}, expected int8 / uint8`);
        out.set(name, { data, dims: t.dims.slice() as number[] });
      }
      return out;
    },
    release: () => session.release(),
  };
}
