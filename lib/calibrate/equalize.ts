// Cross-layer range equalization (Nagel et al. 2019, "Data-free quantization", with activation
// ranges from the calibration images instead of weight ranges): for a Conv → Relu whose output
// feeds only convolutions (directly, or through a squeeze-and-excitation GlobalAveragePool / Mul),
// channel c of the Relu output is divided by s_c (Conv weights and bias) and the next layers'
// input channel c multiplied by s_c. Relu(x / s) = Relu(x) / s for s > 0, so the float function is
// unchanged, while per-tensor int8 activations stop wasting their range on a few wide channels
// (the per-channel ranges of depthwise outputs in MobileNetV3 span 100×).
// Tensors whose values change are renamed (suffix '_eq') so a comparison by name never pairs them
// with the unequalized float tensors.
import { NodeProto, attrInt } from '../onnx/proto';
import { Graph } from './graph';
import { float, makeNode } from '../onnx/writer';
import { clipBounds } from './normalize';

export interface EqualizePair {
  conv: NodeProto;
  /** the Relu between them, or null for a linear Conv → Conv */
  relu: NodeProto | null;
  /** the tensor between them */
  tensor: string;
  /** convolutions whose input channel c is scaled up (the main path, and the SE squeeze conv) */
  next: NodeProto[];
  /** intermediate nodes whose output is rescaled (GlobalAveragePool, Mul) */
  through: NodeProto[];
  /** upper bound of a ReLU6-style Clip(0, hi) between them (channels may only be scaled up, to at most hi) */
  clipHi?: number;
}

function isConstConv(g: Graph, n: NodeProto | undefined): n is NodeProto {
  return !!n && n.opType === 'Conv' && g.isConst(n.input![1]) && (!n.input![2] || g.isConst(n.input![2]));
}

/** Conv → Relu → {Conv, GAP → Conv, Mul(·, gate) → Conv} and Conv → Conv patterns that can be equalized. */
export function findPairs(g: Graph, only?: 'stem'): EqualizePair[] {
  const pairs: EqualizePair[] = [];
  for (const conv of g.nodes) {
    if (!isConstConv(g, conv)) continue;
    if (only === 'stem' && !g.inputs.some((i) => i.name === conv.input![0])) continue;
    const after = g.soleConsumer(conv.output![0]);
    if (!after) continue;
    let clipHi: number | undefined;
    if (after.opType === 'Clip') {
      // ReLU6: the stem only (the Conv reading the graph input; equalizing later ReLU6 pairs did not help)
      if (!g.inputs.some((i) => i.name === conv.input![0])) continue;
      const b = clipBounds(g, after);
      if (!b || b[0] !== 0 || !(isFinite(b[1]) && b[1] > 0)) continue;
      clipHi = b[1];
    }
    const relu = after.opType === 'Relu' || clipHi !== undefined ? after : null;
    const x = relu ? relu.output![0] : conv.output![0];
    if (g.isGraphOutput(x)) continue;
    const C = g.constDims(conv.input![1])[0];
    const next: NodeProto[] = [], through: NodeProto[] = [];
    let ok = true;
    const takesChannels = (n: NodeProto | undefined, input: string) =>
      isConstConv(g, n) && n!.input![0] === input && g.constDims(n!.input![1])[1] * attrInt(n!, 'group', 1) === C &&
      (attrInt(n!, 'group', 1) === 1 || attrInt(n!, 'group', 1) === C);
    for (const u of g.consumers(x)) {
      if (takesChannels(u, x)) { next.push(u); continue; }
      if (!relu) { ok = false; break; } // linear: only straight into convolutions
      if (u.opType === 'GlobalAveragePool' && !g.isGraphOutput(u.output![0])) {
        const fc = g.consumers(u.output![0]);
        if (fc.length === 1 && takesChannels(fc[0], u.output![0]) && attrInt(fc[0], 'group', 1) === 1) { through.push(u); next.push(fc[0]); continue; }
      }
      if (u.opType === 'Mul' && u.input![0] !== u.input![1] && !g.isGraphOutput(u.output![0])) {
        const gate = u.input!.find((i) => i !== x)!;
        const gp = g.producer(gate);
        const after = g.consumers(u.output![0]);
        // the gate must be per-channel (N×C×1×1 from an SE branch): it comes from a HardSigmoid / Sigmoid
        if (gp && ['HardSigmoid', 'Sigmoid', 'Clip'].includes(gp.opType!) && after.length === 1 && takesChannels(after[0], u.output![0])) {
          through.push(u); next.push(after[0]); continue;
        }
      }
      ok = false;
      break;
    }
    if (ok && next.length) pairs.push({ conv, relu, tensor: x, next, through, ...(clipHi !== undefined ? { clipHi } : {}) });
  }
  return pairs;
}

/**
 * Applies the equalization given each pair's per-channel maximum of the Relu output (from the
 * calibration images). Returns the number of pairs changed.
 */
export function equalize(g: Graph, pairs: EqualizePair[], channelMax: Map<string, Float32Array>): number {
  let changed = 0;
  for (const p of pairs) {
    const amax = channelMax.get(p.tensor);
    if (!amax) continue;
    const wN = p.conv.input![1];
    const wd = g.constDims(wN);
    const C = wd[0];
    // widest weight of each input channel over the main consumers (not the SE squeeze conv)
    const r2 = new Float32Array(C);
    const main = p.next.filter((n) => !p.through.some((t) => t.opType === 'GlobalAveragePool' && n.input![0] === t.output![0]));
    for (const n of main) {
      const w = g.constF(n.input![1])!;
      const d = g.constDims(n.input![1]);
      const group = attrInt(n, 'group', 1);
      const k = d[2] * d[3];
      if (group === 1) {
        for (let o = 0; o < d[0]; o++) for (let c = 0; c < C; c++) for (let j = 0; j < k; j++) r2[c] = Math.max(r2[c], Math.abs(w[(o * C + c) * k + j]));
      } else {
        // depthwise: compare against the channel's own filter
        for (let c = 0; c < C; c++) for (let j = 0; j < k; j++) r2[c] = Math.max(r2[c], Math.abs(w[c * k + j]));
      }
    }
    let amaxAll = 0, r2All = 0;
    for (let c = 0; c < C; c++) { amaxAll = Math.max(amaxAll, amax[c]); r2All = Math.max(r2All, r2[c]); }
    if (!(amaxAll > 0 && r2All > 0)) continue;
    const s = new Float32Array(C);
    // depthwise consumers only: their per-channel weight scales absorb any s, so a clipped (ReLU6)
    // channel is scaled up to fill the clip range
    const allDw = p.through.length === 0 && p.next.every((n) => attrInt(n, 'group', 1) === C && C > 1);
    for (let c = 0; c < C; c++) {
      // target: channel range × its next-layer weight range equal across channels
      let v = amax[c] > 0 && r2[c] > 0 ? Math.sqrt((amax[c] / amaxAll) / (r2[c] / r2All)) : 1;
      if (p.clipHi !== undefined) {
        // k·Clip(0, hi)(x) = Clip(0, hi)(k·x) only where k·x ≤ hi, so a ReLU6 channel is only scaled up
        // (s ≤ 1), to at most its calibrated maximum at hi: beyond that maximum it now clips at hi·s
        // (a per-channel calibrated range, as any calibrated activation range clips)
        if (allDw) v = amax[c] > 0 ? amax[c] / p.clipHi : 1;
        v = Math.min(1, Math.max(v, amax[c] / p.clipHi));
      }
      v = Math.min(Math.max(v, 1 / 64), 64);
      s[c] = v;
    }
    // scale the producing conv down
    const w1 = g.constF(wN)!.slice();
    const per = w1.length / C;
    for (let c = 0; c < C; c++) for (let j = 0; j < per; j++) w1[c * per + j] /= s[c];
    const bN = p.conv.input![2];
    const b1 = bN ? g.constF(bN)!.slice() : new Float32Array(C);
    for (let c = 0; c < C; c++) b1[c] /= s[c];
    p.conv.input = [p.conv.input![0], g.addConst(`${wN}_eq`, wd, w1), g.addConst(`${bN || wN + '_bias'}_eq`, [C], b1)];
    // and the consumers up
    for (const n of p.next) {
      const nw = n.input![1];
      const w = g.constF(nw)!.slice();
      const d = g.constDims(nw);
      const group = attrInt(n, 'group', 1);
      const k = d[2] * d[3];
      if (group === 1) {
        for (let o = 0; o < d[0]; o++) for (let c = 0; c < C; c++) for (let j = 0; j < k; j++) w[(o * C + c) * k + j] *= s[c];
      } else {
        for (let c = 0; c < C; c++) for (let j = 0; j < k; j++) w[c * k + j] *= s[c];
      }
      n.input = [n.input![0], g.addConst(`${nw}_eq`, d, w), ...n.input!.slice(2)];
    }
    // rename the tensors whose values changed
    for (const node of [p.conv, ...(p.relu ? [p.relu] : []), ...p.through]) {
      const old = node.output![0];
      const nu = g.fresh(`${old}_eq`);
      node.output = [nu];
      g.replaceUses(old, nu);
    }
    changed++;
  }
  return changed;
}

/** Conv → HardSwish → depthwise Conv: the h-swish output's channels can be equalized once h-swish is split. */
export interface HardSwishPair {
  conv: NodeProto;
  hswish: NodeProto;
  depthwise: NodeProto;
}

/**
 * HardSwish outputs that feed only a depthwise Conv (MobileNetV3's expansion → depthwise). Their
 * per-channel ranges differ by 100× (the Keras V3-Small stem: one channel spans ±0.3 where others
 * reach 20, and the depthwise filter multiplies it by 47), which per-tensor int8 cannot carry.
 */
export function findHardSwishPairs(g: Graph): HardSwishPair[] {
  const pairs: HardSwishPair[] = [];
  for (const hswish of g.nodes) {
    if (hswish.opType !== 'HardSwish') continue;
    const conv = g.producer(hswish.input![0]);
    if (!isConstConv(g, conv) || g.consumers(hswish.input![0]).length !== 1 || g.isGraphOutput(hswish.input![0])) continue;
    if (g.isGraphOutput(hswish.output![0])) continue;
    const cons = g.consumers(hswish.output![0]);
    const C = g.constDims(conv.input![1])[0];
    if (cons.length !== 1 || !isConstConv(g, cons[0]) || attrInt(cons[0], 'group', 1) !== C || g.constDims(cons[0].input![1])[0] !== C) continue;
    pairs.push({ conv, hswish, depthwise: cons[0] });
  }
  return pairs;
}

/**
 * Equalizes the h-swish output channels: h-swish(x)·s = (s·x)·h-sigmoid(x), so
 *   Conv → HardSwish → DW   becomes   Conv·s → a,  Conv → HardSigmoid → gate,  Mul(a, gate) → DW/s
 * (the same function; the Conv is computed twice, once scaled per channel). The Mul output is
 * quantized per tensor with the channels brought to comparable ranges (s_c from the channel's
 * range and its depthwise filter's range, as in cross-layer equalization); the gate is in [0, 1]
 * and the scaled Conv output has its own scale, as the SE Mul's inputs do. Returns the number of
 * pairs changed.
 */
export function equalizeHardSwish(g: Graph, pairs: HardSwishPair[], channelMax: Map<string, Float32Array>): number {
  let changed = 0;
  for (const p of pairs) {
    const amax = channelMax.get(p.hswish.output![0]);
    if (!amax) continue;
    const { conv, hswish, depthwise: dw } = p;
    const wN = conv.input![1], bN = conv.input![2];
    const C = g.constDims(wN)[0];
    const dwW = g.constF(dw.input![1])!, dwD = g.constDims(dw.input![1]);
    const k = dwW.length / C;
    const wr = new Float32Array(C);
    for (let c = 0; c < C; c++) for (let j = 0; j < k; j++) wr[c] = Math.max(wr[c], Math.abs(dwW[c * k + j]));
    let aAll = 0, wAll = 0;
    for (let c = 0; c < C; c++) { aAll = Math.max(aAll, amax[c]); wAll = Math.max(wAll, wr[c]); }
    if (!(aAll > 0 && wAll > 0)) continue;
    const s = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      const v = amax[c] > 0 && wr[c] > 0 ? Math.sqrt((wr[c] / wAll) / (amax[c] / aAll)) : 1;
      s[c] = Math.min(Math.max(v, 1 / 64), 64);
    }
    const w = g.constF(wN)!, per = w.length / C;
    const b = bN ? g.constF(bN)! : new Float32Array(C);
    const ws = w.slice(), bs = b.slice();
    for (let c = 0; c < C; c++) { for (let j = 0; j < per; j++) ws[c * per + j] *= s[c]; bs[c] *= s[c]; }
    const x = hswish.input![0];
    const base = hswish.name || hswish.output![0];
    const scaled = g.fresh(`${x}_scaled`);
    const scaledConv = makeNode('Conv', g.fresh(`${conv.name || x}_scaled`), [conv.input![0], g.addConst(`${wN}_scaled`, g.constDims(wN), ws), g.addConst(`${bN || wN + '_bias'}_scaled`, [C], bs)], [scaled]);
    scaledConv.attribute = conv.attribute ?? []; // the Conv's own attributes
    const gate = g.fresh(`${base}_gate`);
    const hsig = makeNode('HardSigmoid', g.fresh(`${base}_gate`), [x], [gate], { alpha: float(1 / 6), beta: float(0.5) });
    const out = g.fresh(`${hswish.output![0]}_eq`);
    const mul = makeNode('Mul', base, [scaled, gate], [out]);
    g.nodes[g.nodes.indexOf(hswish)] = mul;
    g.nodes.splice(g.nodes.indexOf(conv) + 1, 0, scaledConv, hsig);
    // the gate is 0 where x ≤ −3, i.e. where channel c of the scaled output is ≤ −3·s_c: those
    // values do not matter (calibration observes max(a_c, −3·s_c)), and none below −3·max(s)
    let sMax = 0;
    const channelLo = new Float32Array(C);
    for (let c = 0; c < C; c++) { sMax = Math.max(sMax, s[c]); channelLo[c] = -3 * s[c]; }
    g.rangeHints.set(scaled, { lo: -3 * sMax, hi: Infinity, channelLo });
    const dwS = dwW.slice();
    for (let c = 0; c < C; c++) for (let j = 0; j < k; j++) dwS[c * k + j] /= s[c];
    dw.input = [out, g.addConst(`${dw.input![1]}_eq`, dwD, dwS), ...dw.input!.slice(2)];
    changed++;
  }
  return changed;
}

/**
 * Splits a ReLU6 stem output that feeds only depthwise convolutions into `parts` range pieces:
 * Clip(0, hi)(x) = Σ_k Clip(0, hi/parts)(x − k·hi/parts), so the Conv computes each channel `parts` times
 * (bias shifted by −k·hi/parts, channels interleaved), the Clip becomes Clip(0, hi/parts), and each depthwise
 * Conv becomes a grouped Conv (group = C, `parts` input channels per group, the same filter on each). The
 * same function, exactly (a zero pad is zero in every piece); the int8 step of the tensor is `parts`× finer.
 */
export function splitClipRange(g: Graph, p: EqualizePair, parts: number): boolean {
  if (p.clipHi === undefined || !p.relu || p.through.length) return false;
  const wN = p.conv.input![1], bN = p.conv.input![2];
  const wd = g.constDims(wN);
  const C = wd[0];
  if (!p.next.every((n) => attrInt(n, 'group', 1) === C && g.constDims(n.input![1])[0] === C && C > 1)) return false;
  const w = g.constF(wN)!, per = w.length / C;
  const b = bN ? g.constF(bN)! : new Float32Array(C);
  const step = p.clipHi / parts;
  const w2 = new Float32Array(w.length * parts), b2 = new Float32Array(C * parts);
  for (let c = 0; c < C; c++) {
    for (let k = 0; k < parts; k++) {
      w2.set(w.subarray(c * per, (c + 1) * per), (c * parts + k) * per);
      b2[c * parts + k] = b[c] - k * step;
    }
  }
  p.conv.input = [p.conv.input![0], g.addConst(`${wN}_split`, [C * parts, ...wd.slice(1)], w2), g.addConst(`${bN || wN + '_bias'}_split`, [C * parts], b2)];
  const clip = p.relu;
  clip.input = [clip.input![0], g.addConst(`${clip.name || 'clip'}_min`, [], new Float32Array([0])), g.addConst(`${clip.name || 'clip'}_max`, [], new Float32Array([step]))];
  for (const n of p.next) {
    const nw = n.input![1];
    const d = g.constDims(nw);
    const k2 = d[2] * d[3];
    const dw = g.constF(nw)!;
    const out = new Float32Array(C * parts * k2);
    for (let c = 0; c < C; c++) for (let k = 0; k < parts; k++) out.set(dw.subarray(c * k2, (c + 1) * k2), (c * parts + k) * k2);
    n.input = [n.input![0], g.addConst(`${nw}_split`, [C, parts, d[2], d[3]], out), ...n.input!.slice(2)];
  }
  for (const node of [p.conv, clip]) {
    const old = node.output![0];
    const nu = g.fresh(`${old}_split`);
    node.output = [nu];
    g.replaceUses(old, nu);
  }
  return true;
}
