// ONNX Runtime as an exact integer reference on this CPU: whether its x86 uint8 x int8 kernels
// saturate (ortU8S8Saturates), whether a graph needs ORT's exact U8U8 kernels here (needsU8U8, from
// its activationTypes), and whether ORT is the reference here at all (ortReferenceCaveat).
//
// ORT (MLAS, onnxruntime/core/mlas/lib/platform.cpp) multiplies uint8 activations by int8 weights
// (QLinearConv, QLinearMatMul, QGemm and their QDQ forms) with `vpmaddubsw` on x86 CPUs without VNNI:
// it adds two u8 x s8 products into a saturating int16, so a pair above 32767 is clipped (255 * 127 * 2
// = 64770) and ORT's result is no longer the integer convolution. With VNNI (`vpdpbusd`, AVX-512 VNNI on
// an AVX-512 CPU, AVX-VNNI on an AVX2 one) the products are summed in int32: exact. ORT's own flag
// for the condition, MlasPlatformU8S8Overflow(), is true on every AVX2 CPU, VNNI or not (it compares
// dispatch tables), so it cannot tell the two apart; this module reads the CPU's feature flags instead.
// int8 x int8 (int8 activations) has no such problem on x86: without AVX-VNNI-INT8 ORT runs it with
// its portable C++ kernel (GemmS8S8Dispatch = MlasGemmQuantDispatchDefault, int32 sums), with it
// `vpdpbssd`; both exact. See docs/quantization.md, "The ONNX Runtime reference".
import * as fs from 'fs';
import { onnx, DataType } from '../onnx/proto';

/** The CPU feature flags of /proc/cpuinfo (Linux), or null where they cannot be read. */
function cpuFlags(): Set<string> | null {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => /^flags\s*:/.test(l));
    return line ? new Set(line.replace(/^flags\s*:/, '').trim().split(/\s+/)) : null;
  } catch {
    return null;
  }
}

/**
 * True when ORT's u8 x s8 kernels saturate on this CPU: x86 whose kernel MLAS picks is neither
 * AVX-512 VNNI nor AVX-VNNI. MLAS takes its AVX-512 "core" kernel (no VNNI: saturating) on any CPU with
 * AVX-512 F/BW/DQ/VL unless it also has AVX-512 VNNI, else its AVX2 kernel unless it has AVX-VNNI.
 * Where the flags cannot be read (x86 outside Linux), true: the remedy (ORT's U8U8 kernels, see
 * QdqExecution 'exact' in session.ts) is exact on every x86 CPU, only slower. False on every other architecture.
 */
export function ortU8S8Saturates(flags: Set<string> | null = cpuFlags(), arch: string = process.arch): boolean {
  if (arch !== 'x64' && arch !== 'ia32') return false;
  if (!flags) return true;
  const avx512Core = ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f));
  return avx512Core ? !flags.has('avx512_vnni') : !flags.has('avx_vnni');
}

/** The input index of the output zero point of QuantizeLinear and the QLinear* ops. */
export const OUTPUT_ZERO_POINT: Record<string, number> = {
  QuantizeLinear: 2, QLinearConv: 7, QLinearAdd: 7, QLinearMul: 7, QLinearMatMul: 7,
  QLinearGlobalAveragePool: 4, QLinearSigmoid: 4, QLinearLeakyRelu: 4, QLinearAveragePool: 4,
};

/**
 * The element types (DataType.INT8 / UINT8) of the graph's activations: the zero points of its
 * QuantizeLinear nodes and of its QLinear* outputs (weights are constants behind DequantizeLinear).
 */
export function activationTypes(graph: onnx.IGraphProto): Set<number> {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const types = new Set<number>();
  for (const n of graph.node ?? []) {
    const i = n.opType ? OUTPUT_ZERO_POINT[n.opType] : undefined;
    if (i === undefined) continue;
    const zp = n.input?.[i];
    types.add(zp ? inits.get(zp)?.dataType ?? DataType.UINT8 : DataType.UINT8); // no zero point: uint8 (ONNX)
  }
  return types;
}

/**
 * Whether ORT's integer QDQ execution of this graph needs its U8U8 kernels (session.x64quantprecision) to be
 * exact here: uint8 activations on an x86 CPU whose uint8 x int8 kernels saturate (ortU8S8Saturates). A graph
 * with both uint8 and int8 activations cannot be run exactly on such a CPU: an Error says so.
 */
export function needsU8U8(graph: onnx.IGraphProto): boolean {
  const acts = activationTypes(graph);
  const u8u8 = acts.has(DataType.UINT8) && ortU8S8Saturates();
  if (u8u8 && acts.has(DataType.INT8)) {
    throw new Error('the model has both uint8 and int8 activations: on this CPU (x86 without VNNI) ONNX Runtime\'s uint8 x int8 '
      + 'kernels saturate, and its exact U8U8 mode (session.x64quantprecision) cannot run int8 activations, so ORT is no exact reference here');
  }
  return u8u8;
}

/**
 * Null where ORT's integer kernels are the exact reference of mnq's contract (x86-64: docs/quantization.md
 * follows ORT's x86 kernels), else why not: on ARM ORT computes QLinearAdd in fixed point (qladd.cpp
 * `MlasQLinearAddKernelHelper`), which differs from its x86 float arithmetic by one LSB on some values, and mnq
 * gives the x86 results on every CPU (its arm64 build is checked bit-identical to x86 by npm run test:arm64).
 */
export function ortReferenceCaveat(arch: string = process.arch): string | null {
  if (arch === 'x64' || arch === 'ia32') return null;
  return `an x86-64 ONNX Runtime: on ${arch} ORT's integer kernels differ from its x86 ones (QLinearAdd in fixed point), `
    + 'and mnq computes the x86 results on every CPU';
}
