// A slow, plain-JS executor of a plan (lib/plan.ts) with ONNX Runtime's
// scalar arithmetic, as the native kernels compute it (native/kernels/quant.h,
// docs/quantization.md): float32 via Math.fround after every operation, MLAS
// requantization (float32(acc) * multiplier, round half to even, + zero point,
// clamp). The tests compare ONNX Runtime and the native addon with it bit for
// bit. Not used by the library.
import { PlanDesc, PlanOp, PlanOpType, UnaryFn, UnaryParams } from '../../lib/plan';
import { buildTable } from '../../lib/compiler/activation';
import { f32, roundHalfEven, quantizeLinear } from '../../lib/numerics/quantization';

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/** quant::hardsigmoid: min(1) then max(0) of f32(f32(alpha * x) + beta). */
function hardsigmoid(x: number, alpha: number, beta: number): number {
  return Math.max(0, Math.min(1, f32(f32(f32(alpha) * x) + f32(beta))));
}

/** The float32 function of an activation, as the native make_lut evaluates it (eval_unary in native/kernels/lut.cc). */
function unary(p: UnaryParams): (x: number) => number {
  switch (p.fn) {
    case UnaryFn.identity: return (x) => x;
    case UnaryFn.relu: return (x) => (x > 0 ? x : 0);
    case UnaryFn.clip: return (x) => Math.min(Math.max(x, f32(p.p0)), f32(p.p1));
    case UnaryFn.hardsigmoid: return (x) => hardsigmoid(x, p.p0, p.p1);
    case UnaryFn.hardswish: return (x) => f32(x * hardsigmoid(x, 1 / 6, 0.5));
    // Approximations: the native code uses MLAS's rational polynomials.
    case UnaryFn.sigmoid: return (x) => f32(1 / (1 + Math.exp(-x)));
    case UnaryFn.tanh: return (x) => f32(Math.tanh(x));
    case UnaryFn.leakyrelu: return (x) => (x >= 0 ? x : f32(f32(p.p0) * x));
    case UnaryFn.mulHardsigmoid: return (x) => f32(x * hardsigmoid(x, p.p0, p.p1));
    default: throw new Error(`unknown UnaryFn ${p.fn}`);
  }
}

/** The 256-entry table t[q + 128] = Q(activation(DQ(q))) the native runtime builds for an op without one. */
export function activationTable(activation: UnaryParams, xScale: number, xZp: number, yScale: number, yZp: number): Int8Array {
  return buildTable(unary(activation), xScale, xZp, yScale, yZp);
}

function table(op: PlanOp, xScale: number, xZp: number, yScale: number, yZp: number): Int8Array {
  return op.table.length === 256 ? op.table : activationTable(op.activation, xScale, xZp, yScale, yZp);
}

/** Runs one image: input int8 NHWC of plan.input; returns every tensor's data (null when never written). */
export function runReference(plan: PlanDesc, input: Int8Array): (Int8Array | null)[] {
  const data: (Int8Array | null)[] = plan.tensors.map(() => null);
  data[plan.input] = input;
  for (const op of plan.ops) {
    const x = plan.tensors[op.inputs[0]];
    const y = plan.tensors[op.output];
    const xd = data[op.inputs[0]]!;
    const out = new Int8Array(y.h * y.w * y.c);
    switch (op.type) {
      case PlanOpType.conv: case PlanOpType.fullyConnected: {
        const fc = op.type === PlanOpType.fullyConnected;
        const s = fc ? {
          inH: 1, inW: 1, inC: x.h * x.w * x.c, outH: 1, outW: 1, outC: y.c, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1,
          dilationH: 1, dilationW: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0,
        } : op.shape;
        const groups = fc ? 1 : op.groups;
        const icPer = s.inC / groups, ocPer = s.outC / groups;
        const oScale = op.hasActivation ? op.actScale : y.scale;
        const oZp = op.hasActivation ? op.actZeroPoint : y.zeroPoint;
        const m = Float32Array.from(op.wScale, (ws) => f32(f32(x.scale * ws) / oScale));
        const lut = op.hasActivation ? table(op, op.actScale, op.actZeroPoint, y.scale, y.zeroPoint) : null;
        const kSize = s.kernelH * s.kernelW * icPer;
        for (let oh = 0; oh < s.outH; oh++) for (let ow = 0; ow < s.outW; ow++) for (let oc = 0; oc < s.outC; oc++) {
          let acc = op.bias.length ? op.bias[oc] : 0;
          const zw = op.wZeroPoint.length ? op.wZeroPoint[oc] : 0;
          const c0 = Math.floor(oc / ocPer) * icPer; // the group's first input channel
          for (let kh = 0; kh < s.kernelH; kh++) {
            const ih = oh * s.strideH - s.padTop + kh * s.dilationH;
            if (ih < 0 || ih >= s.inH) continue; // padding = the input zero point
            for (let kw = 0; kw < s.kernelW; kw++) {
              const iw = ow * s.strideW - s.padLeft + kw * s.dilationW;
              if (iw < 0 || iw >= s.inW) continue;
              const base = (ih * s.inW + iw) * s.inC;
              for (let ic = 0; ic < icPer; ic++) {
                const w = op.weights[oc * kSize + (ic * s.kernelH + kh) * s.kernelW + kw];
                // piece-major input (PlanOp.inputPieces): ONNX channel oc·m + ic is stored at ic·outC + oc
                const xi = !fc && op.inputPieces > 1 ? base + ic * s.outC + oc : base + c0 + ic;
                acc += (xd[xi] - x.zeroPoint) * (w - zw);
              }
            }
          }
          let q = clamp(roundHalfEven(f32(f32(acc) * m[oc])) + oZp, Math.max(-128, op.qmin), Math.min(127, op.qmax));
          if (lut) q = lut[q + 128];
          out[(oh * s.outW + ow) * s.outC + oc] = q;
        }
        break;
      }
      case PlanOpType.globalAvgPool: {
        const hw = x.h * x.w;
        const scale = f32(x.scale / f32(y.scale * hw));
        for (let c = 0; c < x.c; c++) {
          let acc = -x.zeroPoint * hw;
          for (let p = 0; p < hw; p++) acc += xd[p * x.c + c];
          out[c] = clamp(roundHalfEven(f32(f32(acc) * scale)) + y.zeroPoint, op.qmin, op.qmax);
        }
        break;
      }
      case PlanOpType.add: case PlanOpType.mul: {
        const b = plan.tensors[op.inputs[1]];
        const bd = data[op.inputs[1]]!;
        const bcast = b.h * b.w * b.c !== out.length;
        if (op.type === PlanOpType.add) {
          // ORT's MlasQLinearAdd{S8,U8}KernelAvx2, built with FMA contraction, in the tensors' own
          // domain (uint8: values and zero points + 128): fixed = zc - fma(ra, za, rb * zb);
          // t = fma(a, ra, fma(b, rb, fixed)); q = saturate(round_half_even(t)).
          const off = op.addOffset;
          const fma = (p: number, q: number, r: number) => f32(p * q + r); // exact product, one rounding (double rounding cannot matter for these magnitudes)
          const ra = f32(x.scale / y.scale), rb = f32(b.scale / y.scale);
          const fixed = f32((y.zeroPoint + off) - fma(ra, x.zeroPoint + off, f32(rb * (b.zeroPoint + off))));
          for (let i = 0; i < out.length; i++) {
            const v = fma(xd[i] + off, ra, fma(bd[bcast ? i % b.c : i] + off, rb, fixed));
            out[i] = clamp(roundHalfEven(v) - off, Math.max(-128, op.qmin), Math.min(127, op.qmax));
          }
        } else {
          const r = f32(f32(x.scale * b.scale) / y.scale);
          for (let i = 0; i < out.length; i++) {
            // ORT's MlasQLinearMulKernel: the zero point is added in float (in the tensors' own domain), then rounded
            const v = f32(f32(f32((xd[i] - x.zeroPoint) * (bd[bcast ? i % b.c : i] - b.zeroPoint)) * r) + (y.zeroPoint + op.addOffset));
            out[i] = clamp(roundHalfEven(v) - op.addOffset, Math.max(-128, op.qmin), Math.min(127, op.qmax));
          }
        }
        break;
      }
      case PlanOpType.maxPool: {
        const s = op.shape;
        const t = op.hasActivation ? table(op, op.actScale, op.actZeroPoint, y.scale, y.zeroPoint) : null;
        for (let oy = 0; oy < s.outH; oy++) for (let ox = 0; ox < s.outW; ox++) for (let c = 0; c < s.outC; c++) {
          let m = -128;
          for (let ky = 0; ky < s.kernelH; ky++) for (let kx = 0; kx < s.kernelW; kx++) {
            const iy = oy * s.strideH - s.padTop + ky * s.dilationH, ix = ox * s.strideW - s.padLeft + kx * s.dilationW;
            if (iy >= 0 && iy < s.inH && ix >= 0 && ix < s.inW) m = Math.max(m, xd[(iy * s.inW + ix) * s.inC + c]);
          }
          m = clamp(m, op.qmin, op.qmax);
          out[(oy * s.outW + ox) * s.outC + c] = t ? t[m + 128] : m;
        }
        break;
      }
      case PlanOpType.lut: {
        const t = table(op, x.scale, x.zeroPoint, y.scale, y.zeroPoint);
        for (let i = 0; i < out.length; i++) out[i] = t[xd[i] + 128];
        break;
      }
      default: throw new Error(`op type ${op.type} not implemented`);
    }
    data[op.output] = out;
  }
  return data;
}

/** ORT QuantizeLinear (quant::quantize_linear) of a float NCHW image at x[offset] into int8 NHWC; NaN -> -128. */
export function quantizeInput(x: Float32Array, c: number, h: number, w: number, scale: number, zp: number, offset = 0): Int8Array {
  const out = new Int8Array(c * h * w);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) {
    out[p * c + ch] = quantizeLinear(x[offset + ch * h * w + p], scale, zp);
  }
  return out;
}
