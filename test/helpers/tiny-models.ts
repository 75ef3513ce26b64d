// Small synthetic int8 ONNX graphs for compiler tests (QDQ form, as ORT's quantizer writes them).
import { onnx, makeTensor, encodeModel } from '../../lib/onnx/proto';

type Attr = { name: string; i?: number; f?: number; ints?: number[] };
const node = (opType: string, inputs: string[], outputs: string[], name: string, attrs: Attr[] = []) =>
  onnx.NodeProto.create({
    opType, input: inputs, output: outputs, name,
    attribute: attrs.map((a) => onnx.AttributeProto.create({
      name: a.name,
      ...(a.ints ? { ints: a.ints, type: onnx.AttributeProto.AttributeType.INTS }
        : a.f !== undefined ? { f: a.f, type: onnx.AttributeProto.AttributeType.FLOAT }
          : { i: a.i, type: onnx.AttributeProto.AttributeType.INT }),
    })),
  });

const valueInfo = (name: string, dims: (number | string)[]) => onnx.ValueInfoProto.create({
  name,
  type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});

export interface TinyOptions {
  /** op between the conv and its output Q: 'Relu', 'Clip' (0..6), 'none', or an unsupported op name */
  act?: string;
  /** activation after a Q/DQ pair (becomes a table): 'HardSwish' | 'Sigmoid' | 'none' */
  lut?: string;
  uint8?: boolean;
  /** a MaxPool (3x3 stride 2 pad 1, or 2x2 stride 2 ceil_mode on the 5x5 map) before the GAP, quantized again
   * with the same parameters (ORT drops the pair) or with others (a requantization) */
  maxPool?: { ceil?: boolean; requantize?: boolean };
  /** a constant-0 Pad (pads [0, 0, 1, 0, 0, 0, 0, 1], Keras' ZeroPadding2D) between the input's DQ and the Conv:
   * 'qdq' quantized again with the input's parameters (ORT's quantizer), 'float' straight into the Conv */
  pad?: 'qdq' | 'float';
  /** a grouped Conv summing pairs of channels (group 2: 4 → 2 channels, 3x3 pad 1, as `mnq calibrate
   * --split-stem` writes one) before the GAP, quantized again */
  pieces?: boolean;
}

/** input [N,3,5,5] -> Q -> DQ -> Conv 3x3 pad 1 (4 channels, per-channel int8 weights) -> act -> Q -> DQ -> [lut -> Q -> DQ] -> GAP -> Q -> DQ -> Flatten -> output */
export function tinyConvModel(opts: TinyOptions = {}): Uint8Array {
  const act = opts.act ?? 'Relu';
  const u8 = opts.uint8 ?? true;
  const zpT = (name: string, v: number) => (u8 ? makeTensor(name, [], Uint8Array.of(v + 128)) : makeTensor(name, [], Int8Array.of(v)));
  const inits = [
    makeTensor('x_s', [], Float32Array.of(0.02)), zpT('x_z', 3),
    makeTensor('w_q', [4, 3, 3, 3], Int8Array.from({ length: 108 }, (_, i) => ((i * 37) % 255) - 127)),
    makeTensor('w_s', [4], Float32Array.of(0.01, 0.02, 0.005, 0.03)),
    makeTensor('w_z', [4], Int8Array.of(0, 0, 0, 0)),
    makeTensor('b_q', [4], Int32Array.of(100, -2000, 50, 7)),
    makeTensor('b_s', [4], Float32Array.of(0.0002, 0.0004, 0.0001, 0.0006)),
    makeTensor('y_s', [], Float32Array.of(0.05)), zpT('y_z', -20),
    makeTensor('a_s', [], Float32Array.of(0.03)), zpT('a_z', -100),
    makeTensor('g_s', [], Float32Array.of(0.025)), zpT('g_z', -90),
    makeTensor('c0', [], Float32Array.of(0)), makeTensor('c6', [], Float32Array.of(6)),
    makeTensor('m_s', [], Float32Array.of(0.07)), zpT('m_z', 11),
    makeTensor('pw_q', [2, 2, 3, 3], Int8Array.from({ length: 36 }, (_, i) => ((i * 29) % 255) - 127)),
    makeTensor('pw_s', [2], Float32Array.of(0.004, 0.006)),
    makeTensor('pw_z', [2], Int8Array.of(0, 0)),
    makeTensor('pb_q', [2], Int32Array.of(-300, 800)),
    makeTensor('p_s', [], Float32Array.of(0.09)), zpT('p_z', -7),
  ];
  const nodes = [
    node('QuantizeLinear', ['input', 'x_s', 'x_z'], ['x_q'], 'q_in'),
    node('DequantizeLinear', ['x_q', 'x_s', 'x_z'], ['x'], 'dq_in'),
    node('DequantizeLinear', ['w_q', 'w_s', 'w_z'], ['w'], 'dq_w', [{ name: 'axis', i: 0 }]),
    node('DequantizeLinear', ['b_q', 'b_s'], ['b'], 'dq_b', [{ name: 'axis', i: 0 }]),
    node('Conv', [opts.pad ? 'xp' : 'x', 'w', 'b'], ['conv'], 'conv', [{ name: 'pads', ints: [1, 1, 1, 1] }, { name: 'kernel_shape', ints: [3, 3] }]),
  ];
  if (opts.pad) {
    inits.push(makeTensor('pad_pads', [8], new BigInt64Array([0n, 0n, 1n, 0n, 0n, 0n, 0n, 1n]) as never), makeTensor('pad_zero', [], Float32Array.of(0)));
    const padded = opts.pad === 'qdq' ? 'xpf' : 'xp';
    nodes.splice(4, 0, node('Pad', ['x', 'pad_pads', 'pad_zero'], [padded], 'pad'));
    if (opts.pad === 'qdq') {
      nodes.splice(5, 0, node('QuantizeLinear', ['xpf', 'x_s', 'x_z'], ['xp_q'], 'q_pad'), node('DequantizeLinear', ['xp_q', 'x_s', 'x_z'], ['xp'], 'dq_pad'));
    }
  }
  let y = 'conv';
  if (act === 'Clip') { nodes.push(node('Clip', ['conv', 'c0', 'c6'], ['act'], 'clip')); y = 'act'; }
  else if (act !== 'none') { nodes.push(node(act, ['conv'], ['act'], 'act')); y = 'act'; }
  nodes.push(node('QuantizeLinear', [y, 'y_s', 'y_z'], ['y_q'], 'q_y'), node('DequantizeLinear', ['y_q', 'y_s', 'y_z'], ['y'], 'dq_y'));
  let z = 'y';
  if (opts.lut && opts.lut !== 'none') {
    nodes.push(node(opts.lut, ['y'], ['l'], 'lut'), node('QuantizeLinear', ['l', 'a_s', 'a_z'], ['a_q'], 'q_a'), node('DequantizeLinear', ['a_q', 'a_s', 'a_z'], ['a'], 'dq_a'));
    z = 'a';
  }
  if (opts.maxPool) {
    const attrs = opts.maxPool.ceil
      ? [{ name: 'kernel_shape', ints: [2, 2] }, { name: 'strides', ints: [2, 2] }, { name: 'ceil_mode', i: 1 }]
      : [{ name: 'kernel_shape', ints: [3, 3] }, { name: 'strides', ints: [2, 2] }, { name: 'pads', ints: [1, 1, 1, 1] }];
    const [s, zp] = opts.maxPool.requantize ? ['m_s', 'm_z'] : z === 'a' ? ['a_s', 'a_z'] : ['y_s', 'y_z'];
    nodes.push(node('MaxPool', [z], ['mp'], 'maxpool', attrs), node('QuantizeLinear', ['mp', s, zp], ['mp_q'], 'q_mp'), node('DequantizeLinear', ['mp_q', s, zp], ['m'], 'dq_mp'));
    z = 'm';
  }
  if (opts.pieces) {
    const bs = z === 'a' ? 0.03 : z === 'm' ? 0.07 : 0.05; // the input's scale times the weight scales
    inits.push(makeTensor('pb_s', [2], Float32Array.of(Math.fround(bs * 0.004), Math.fround(bs * 0.006))));
    nodes.push(
      node('DequantizeLinear', ['pw_q', 'pw_s', 'pw_z'], ['pw'], 'dq_pw', [{ name: 'axis', i: 0 }]),
      node('DequantizeLinear', ['pb_q', 'pb_s'], ['pb'], 'dq_pb', [{ name: 'axis', i: 0 }]),
      node('Conv', [z, 'pw', 'pb'], ['pc'], 'grouped', [{ name: 'group', i: 2 }, { name: 'pads', ints: [1, 1, 1, 1] }, { name: 'kernel_shape', ints: [3, 3] }]),
      node('QuantizeLinear', ['pc', 'p_s', 'p_z'], ['p_q'], 'q_p'), node('DequantizeLinear', ['p_q', 'p_s', 'p_z'], ['p'], 'dq_p'),
    );
    z = 'p';
  }
  nodes.push(
    node('GlobalAveragePool', [z], ['g'], 'gap'),
    node('QuantizeLinear', ['g', 'g_s', 'g_z'], ['g_q'], 'q_g'),
    node('DequantizeLinear', ['g_q', 'g_s', 'g_z'], ['gd'], 'dq_g'),
    node('Flatten', ['gd'], ['output'], 'flatten'),
  );
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'mnq-test',
    graph: { name: 'tiny', node: nodes, initializer: inits, input: [valueInfo('input', ['N', 3, 5, 5])], output: [valueInfo('output', ['N', opts.pieces ? 2 : 4])] },
  });
  return encodeModel(model);
}

/**
 * A classifier head exercising the other QDQ patterns: input [N,4,3,3] -> Q -> DQ
 * -> Conv 1x1 -> Q -> DQ -> x * HardSigmoid(x) (h-swish as opset 13 writes it) -> Q -> DQ
 * -> Sigmoid -> Q -> DQ -> GlobalAveragePool -> Q -> DQ -> Flatten -> Gemm (transB, per-channel
 * int8 weights, int32 bias) -> Q -> DQ -> Softmax -> output [N, 5]; with `quantizedSoftmax`, the
 * Softmax is quantized again (-> Q(1/256, -128) -> DQ -> output), as ONNX Runtime's quantizer writes it,
 * and the FC has 10 outputs.
 */
export function tinyHeadModel(opts: { quantizedSoftmax?: boolean } = {}): Uint8Array {
  const classes = opts.quantizedSoftmax ? 10 : 5;
  const inits = [
    makeTensor('x_s', [], Float32Array.of(0.03)), makeTensor('x_z', [], Int8Array.of(-5)),
    makeTensor('w_q', [6, 4, 1, 1], Int8Array.from({ length: 24 }, (_, i) => ((i * 53) % 255) - 127)),
    makeTensor('w_s', [6], Float32Array.of(0.01, 0.02, 0.015, 0.03, 0.008, 0.012)),
    makeTensor('w_z', [6], Int8Array.of(0, 0, 0, 0, 0, 0)),
    makeTensor('c_s', [], Float32Array.of(0.06)), makeTensor('c_z', [], Int8Array.of(10)),
    makeTensor('h_s', [], Float32Array.of(0.04)), makeTensor('h_z', [], Int8Array.of(-110)),
    makeTensor('s_s', [], Float32Array.of(1 / 256)), makeTensor('s_z', [], Int8Array.of(-128)),
    makeTensor('g_s', [], Float32Array.of(0.003)), makeTensor('g_z', [], Int8Array.of(-128)),
    makeTensor('fw_q', [classes, 6], Int8Array.from({ length: classes * 6 }, (_, i) => ((i * 71) % 255) - 127)),
    makeTensor('fw_s', [classes], Float32Array.from({ length: classes }, (_, i) => [0.02, 0.01, 0.03, 0.025, 0.015][i % 5])),
    makeTensor('fw_z', [classes], new Int8Array(classes)),
    makeTensor('fb_q', [classes], Int32Array.from({ length: classes }, (_, i) => [300, -200, 0, 50, -1000][i % 5])),
    makeTensor('fb_s', [classes], Float32Array.from({ length: classes }, (_, i) => [0.00006, 0.00003, 0.00009, 0.000075, 0.000045][i % 5])),
    makeTensor('o_s', [], Float32Array.of(0.01)), makeTensor('o_z', [], Int8Array.of(0)),
    makeTensor('p_s', [], Float32Array.of(1 / 256)), makeTensor('p_z', [], Int8Array.of(-128)),
  ];
  const q = (x: string, p: string, y: string) => [
    node('QuantizeLinear', [x, `${p}_s`, `${p}_z`], [`${y}_q`], `q_${y}`),
    node('DequantizeLinear', [`${y}_q`, `${p}_s`, `${p}_z`], [y], `dq_${y}`),
  ];
  const nodes = [
    ...q('input', 'x', 'x'),
    node('DequantizeLinear', ['w_q', 'w_s', 'w_z'], ['w'], 'dq_w', [{ name: 'axis', i: 0 }]),
    node('Conv', ['x', 'w'], ['conv'], 'conv'),
    ...q('conv', 'c', 'c'),
    node('HardSigmoid', ['c'], ['hs'], 'hardsigmoid', [{ name: 'alpha', f: 1 / 6 }, { name: 'beta', f: 0.5 }]),
    node('Mul', ['c', 'hs'], ['hsw'], 'hswish'),
    ...q('hsw', 'h', 'h'),
    node('Sigmoid', ['h'], ['sig'], 'sigmoid'),
    ...q('sig', 's', 's'),
    node('GlobalAveragePool', ['s'], ['gap'], 'gap'),
    ...q('gap', 'g', 'g'),
    node('Flatten', ['g'], ['flat'], 'flatten'),
    node('DequantizeLinear', ['fw_q', 'fw_s', 'fw_z'], ['fw'], 'dq_fw', [{ name: 'axis', i: 0 }]),
    node('DequantizeLinear', ['fb_q', 'fb_s'], ['fb'], 'dq_fb', [{ name: 'axis', i: 0 }]),
    node('Gemm', ['flat', 'fw', 'fb'], ['fc'], 'fc', [{ name: 'transB', i: 1 }]),
    ...q('fc', 'o', 'o'),
    node('Softmax', ['o'], [opts.quantizedSoftmax ? 'sm' : 'output'], 'softmax', [{ name: 'axis', i: 1 }]),
    ...(opts.quantizedSoftmax ? [
      node('QuantizeLinear', ['sm', 'p_s', 'p_z'], ['p_q'], 'q_p'),
      node('DequantizeLinear', ['p_q', 'p_s', 'p_z'], ['output'], 'dq_p'),
    ] : []),
  ];
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'mnq-test',
    graph: { name: 'head', node: nodes, initializer: inits, input: [valueInfo('input', ['N', 4, 3, 3])], output: [valueInfo('output', ['N', classes])] },
  });
  return encodeModel(model);
}

/**
 * The same model with an NHWC image input: [N, H, W, C] → Transpose(0, 3, 1, 2) → the original graph, as
 * tf2onnx writes Keras models. `afterQdq`: for an int8 QDQ model, the Transpose goes after the input's
 * QuantizeLinear → DequantizeLinear instead (the layout mnq calibrate writes).
 */
export function withNhwcInput(bytes: Uint8Array, afterQdq = false): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph!;
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const inp = g.input!.find((i) => !inits.has(i.name))!;
  const d = inp.type!.tensorType!.shape!.dim!;
  const name = inp.name!;
  const perm = { name: 'perm', ints: [0, 3, 1, 2] };
  if (afterQdq) {
    const q = g.node!.find((n) => n.opType === 'QuantizeLinear' && n.input![0] === name)!;
    const dq = g.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0] === q.output![0])!;
    const out = dq.output![0];
    for (const n of g.node!) n.input = n.input!.map((x) => (x === out ? `${out}_nchw` : x));
    g.node!.splice(g.node!.indexOf(dq) + 1, 0, node('Transpose', [out], [`${out}_nchw`], 'to_nchw', [perm]));
  } else {
    for (const n of g.node!) n.input = n.input!.map((x) => (x === name ? `${name}_nchw` : x));
    g.node!.unshift(node('Transpose', [name], [`${name}_nchw`], 'to_nchw', [perm]));
  }
  g.input = g.input!.map((i) => (i === inp ? onnx.ValueInfoProto.create({
    name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [d[0], d[2], d[3], d[1]] } } },
  }) : i));
  return encodeModel(m);
}

/**
 * A float model rewritten the way tf2onnx exports a Keras model: NHWC input transposed to NCHW, every Conv with
 * asymmetric padding split into a Pad node (Keras' ZeroPadding2D) and an unpadded Conv, every GlobalAveragePool
 * as Transpose back to NHWC → ReduceMean over axes [1, 2] (keepdims 1). The same function.
 */
export function kerasStyle(bytes: Uint8Array): Uint8Array {
  const m = onnx.ModelProto.decode(withNhwcInput(bytes));
  const g = m.graph!;
  const out: onnx.INodeProto[] = [];
  let k = 0;
  for (const n of g.node!) {
    const pads = (n.attribute ?? []).find((a) => a.name === 'pads')?.ints?.map(Number);
    if (n.opType === 'Conv' && pads && (pads[0] !== pads[2] || pads[1] !== pads[3])) {
      const p = `keras_pad_${k++}`;
      g.initializer!.push(makeTensor(`${p}_pads`, [8], new BigInt64Array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]].map(BigInt)) as never));
      out.push(node('Pad', [n.input![0], `${p}_pads`], [`${p}_out`], p));
      n.input = [`${p}_out`, ...n.input!.slice(1)];
      n.attribute = n.attribute!.filter((a) => a.name !== 'pads');
      out.push(n);
    } else if (n.opType === 'GlobalAveragePool') {
      const t = `keras_gap_${k++}`;
      out.push(node('Transpose', [n.input![0]], [`${t}_nhwc`], `${t}_transpose`, [{ name: 'perm', ints: [0, 2, 3, 1] }]));
      out.push(node('ReduceMean', [`${t}_nhwc`], [`${t}_mean`], `${t}_mean`, [{ name: 'axes', ints: [1, 2] }, { name: 'keepdims', i: 1 }]));
      g.initializer!.push(makeTensor(`${t}_shape`, [4], new BigInt64Array([0n, -1n, 1n, 1n]) as never));
      out.push(node('Reshape', [`${t}_mean`, `${t}_shape`], n.output!, `${t}_nchw`));
    } else {
      out.push(n);
    }
  }
  g.node = out;
  return encodeModel(m);
}
