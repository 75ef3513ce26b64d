// The four MobileNet architectures as Nets, following the papers' tables and the
// reference implementations (TF-slim for V1, torchvision for V2 and V3).
import { Activation, Net, NetBuilder, Value, makeDivisible } from './net';

export const ARCHITECTURES = ['v1', 'v2', 'v3-large', 'v3-small'] as const;
export type Arch = (typeof ARCHITECTURES)[number];

export interface ArchOptions {
  /** Width multiplier (alpha), > 0. Default 1. */
  width?: number;
  /** Input resolution (square), a multiple of 32, at least 32. Default 224. */
  resolution?: number;
  /** Number of classes. Default 1000. */
  classes?: number;
}

const ALIASES: Record<string, Arch> = {
  v1: 'v1', mobilenetv1: 'v1', mobilenet_v1: 'v1',
  v2: 'v2', mobilenetv2: 'v2', mobilenet_v2: 'v2',
  'v3-large': 'v3-large', v3large: 'v3-large', v3_large: 'v3-large', mobilenet_v3_large: 'v3-large',
  'v3-small': 'v3-small', v3small: 'v3-small', v3_small: 'v3-small', mobilenet_v3_small: 'v3-small',
};

/** Parses an architecture name; throws a clear error for unknown names. */
export function parseArch(name: string): Arch {
  const a = ALIASES[String(name).toLowerCase()];
  if (!a) throw new Error(`unknown architecture '${name}': expected one of ${ARCHITECTURES.join(', ')}`);
  return a;
}

export interface ResolvedArchOptions { width: number; resolution: number; classes: number }

export function checkArchOptions(o: ArchOptions): ResolvedArchOptions {
  const width = o.width ?? 1;
  const resolution = o.resolution ?? 224;
  const classes = o.classes ?? 1000;
  if (typeof width !== 'number' || !Number.isFinite(width) || width <= 0) {
    throw new Error(`width must be a number > 0, got ${o.width}`);
  }
  if (width > 8) throw new Error(`width ${width} is too large (at most 8)`);
  if (!Number.isInteger(resolution) || resolution < 32 || resolution % 32 !== 0) {
    throw new Error(`resolution must be a multiple of 32 and at least 32, got ${o.resolution}`);
  }
  if (resolution > 4096) throw new Error(`resolution ${resolution} is too large (at most 4096)`);
  if (!Number.isInteger(classes) || classes < 1) throw new Error(`classes must be an integer >= 1, got ${o.classes}`);
  return { width, resolution, classes };
}

export function buildNet(arch: Arch, options: ArchOptions = {}): Net {
  const o = checkArchOptions(options);
  switch (arch) {
    case 'v1': return mobilenetV1(o);
    case 'v2': return mobilenetV2(o);
    case 'v3-large': return mobilenetV3(o, 'v3-large');
    case 'v3-small': return mobilenetV3(o, 'v3-small');
    default: throw new Error(`unknown architecture '${arch as string}'`);
  }
}

/**
 * MobileNetV1 (Howard et al. 2017, Table 1): 3x3 conv then 13 depthwise separable
 * blocks, ReLU6 (as in the TF reference), global pool, FC. Channels are
 * max(int(c * alpha), 8) as in TF-slim's mobilenet_v1 (depth_multiplier, min_depth 8).
 */
function mobilenetV1(o: ResolvedArchOptions): Net {
  const b = new NetBuilder({ arch: 'v1', ...o });
  const depth = (c: number) => Math.max(Math.floor(c * o.width + 1e-9), 8);
  let x = b.conv('features.0', b.input, depth(32), { kernel: 3, stride: 2, act: 'relu6' });
  const table: Array<[number, number]> = [
    [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
    [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
  ];
  table.forEach(([c, s], i) => {
    x = b.dwconv(`features.${i + 1}.dw`, x, 3, s, 'relu6');
    x = b.pwconv(`features.${i + 1}.pw`, x, depth(c), 'relu6');
  });
  return b.finish(b.classifier('classifier', x));
}

/**
 * MobileNetV2 (Sandler et al. 2018, Table 2; torchvision mobilenet_v2): inverted
 * residuals with linear bottlenecks, ReLU6, shortcut when stride 1 and in == out,
 * first block (t = 1) without expansion conv, last 1x1 conv to 1280 (scaled only for width > 1).
 */
function mobilenetV2(o: ResolvedArchOptions): Net {
  const b = new NetBuilder({ arch: 'v2', ...o });
  let inC = makeDivisible(32 * o.width, 8);
  const lastC = makeDivisible(1280 * Math.max(1, o.width), 8);
  let x = b.conv('features.0', b.input, inC, { kernel: 3, stride: 2, act: 'relu6' });
  const table: Array<[number, number, number, number]> = [
    [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
  ];
  let idx = 1;
  for (const [t, c, n, s] of table) {
    const outC = makeDivisible(c * o.width, 8);
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const name = `features.${idx++}.conv`;
      const hidden = Math.round(inC * t);
      let y = x;
      let j = 0;
      if (t !== 1) y = b.pwconv(`${name}.${j++}`, y, hidden, 'relu6');
      y = b.dwconv(`${name}.${j++}`, y, 3, stride, 'relu6');
      y = b.pwconv(`${name}.${j++}`, y, outC, 'none');
      x = stride === 1 && inC === outC ? b.add(`${name}.add`, x, y) : y;
      inC = outC;
    }
  }
  x = b.pwconv(`features.${idx}`, x, lastC, 'relu6');
  return b.finish(b.classifier('classifier', x));
}

/** One bneck row: kernel, expansion size, output channels, SE, nonlinearity, stride. */
type Bneck = [number, number, number, boolean, 'RE' | 'HS', number];

// Howard et al. 2019, Table 1 (V3-Large) and Table 2 (V3-Small); input channels are the previous row's output.
const V3_LARGE: Bneck[] = [
  [3, 16, 16, false, 'RE', 1],
  [3, 64, 24, false, 'RE', 2],
  [3, 72, 24, false, 'RE', 1],
  [5, 72, 40, true, 'RE', 2],
  [5, 120, 40, true, 'RE', 1],
  [5, 120, 40, true, 'RE', 1],
  [3, 240, 80, false, 'HS', 2],
  [3, 200, 80, false, 'HS', 1],
  [3, 184, 80, false, 'HS', 1],
  [3, 184, 80, false, 'HS', 1],
  [3, 480, 112, true, 'HS', 1],
  [3, 672, 112, true, 'HS', 1],
  [5, 672, 160, true, 'HS', 2],
  [5, 960, 160, true, 'HS', 1],
  [5, 960, 160, true, 'HS', 1],
];
const V3_SMALL: Bneck[] = [
  [3, 16, 16, true, 'RE', 2],
  [3, 72, 24, false, 'RE', 2],
  [3, 88, 24, false, 'RE', 1],
  [5, 96, 40, true, 'HS', 2],
  [5, 240, 40, true, 'HS', 1],
  [5, 240, 40, true, 'HS', 1],
  [5, 120, 48, true, 'HS', 1],
  [5, 144, 48, true, 'HS', 1],
  [5, 288, 96, true, 'HS', 2],
  [5, 576, 96, true, 'HS', 1],
  [5, 576, 96, true, 'HS', 1],
];

/**
 * MobileNetV3 (Howard et al. 2019; torchvision mobilenet_v3_large/small): 16-channel
 * h-swish stem, bneck blocks (expansion conv only when exp != in, SE squeeze to
 * make_divisible(exp // 4, 8) with ReLU and h-sigmoid), and the efficient last
 * stage: 1x1 conv to 6x channels (h-swish), pool, FC (1280 / 1024, h-swish), FC classifier.
 * All channel counts, including the FC width, are make_divisible(c * width, 8) as in torchvision.
 */
function mobilenetV3(o: ResolvedArchOptions, arch: 'v3-large' | 'v3-small'): Net {
  const b = new NetBuilder({ arch, ...o });
  const rows = arch === 'v3-large' ? V3_LARGE : V3_SMALL;
  const adjust = (c: number) => makeDivisible(c * o.width, 8);
  let inC = adjust(16);
  let x: Value = b.conv('features.0', b.input, inC, { kernel: 3, stride: 2, act: 'hswish' });
  rows.forEach(([k, exp, out, se, nl, s], i) => {
    const act: Activation = nl === 'HS' ? 'hswish' : 'relu';
    const expC = adjust(exp);
    const outC = adjust(out);
    const name = `features.${i + 1}.block`;
    let j = 0;
    let y = x;
    if (expC !== inC) y = b.pwconv(`${name}.${j++}`, y, expC, act);
    y = b.dwconv(`${name}.${j++}`, y, k, s, act);
    if (se) y = b.se(`${name}.${j++}`, y, makeDivisible(Math.floor(expC / 4), 8));
    y = b.pwconv(`${name}.${j++}`, y, outC, 'none');
    x = s === 1 && inC === outC ? b.add(`features.${i + 1}.add`, x, y) : y;
    inC = outC;
  });
  const lastConvC = 6 * inC;
  const lastC = adjust(arch === 'v3-large' ? 1280 : 1024);
  x = b.pwconv(`features.${rows.length + 1}`, x, lastConvC, 'hswish');
  x = b.avgpool('avgpool', x);
  x = b.linear('classifier.0', x, lastC, 'hswish');
  return b.finish(b.linear('classifier.3', x, o.classes));
}
