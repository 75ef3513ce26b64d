// `mnq info <model.onnx | arch>`: parameters, MACs and per-layer detail.
import * as fs from 'fs';
import { readModel } from '../onnx/proto';
import { ARCHITECTURES, countArch, inspectOnnx } from '../builder';
import { parseArgs, reportUsageError, UsageError } from './args';
import { load, ModelMemory } from '../model';

export const summary = 'parameters, MACs and layers of an ONNX model or a MobileNet architecture';

export const CONVENTION = 'params: weights + biases of conv and linear layers, batch norm folded into conv biases; '
  + 'macs: multiply-accumulates of conv and linear layers plus SE channel-scale multiplies, for one image '
  + '(activations, pooling, adds not counted)';

const USAGE = `usage: mnq info <model.onnx | ${ARCHITECTURES.join(' | ')}> [options]

  --width W, --resolution R, --classes C   architecture options (default 1.0, 224, 1000)
  --json       print JSON: { params, macs, ..., layerCount } (with --layers also layers: [...])
  --layers     list every layer`;

export interface InfoLayer {
  name: string;
  type: string;
  weightShape: number[];
  stride: number;
  groups: number;
  act: string;
  input: number[] | null;
  output: number[] | null;
  params: number;
  macs: number | null;
}

export interface Info {
  source: string;
  kind: 'onnx' | 'architecture';
  arch?: string;
  width?: number;
  resolution?: number;
  classes?: number;
  input?: (number | string)[];
  params: number;
  macs: number | null;
  convLinearMacs: number | null;
  seScaleMacs: number;
  convention: string;
  layers: InfoLayer[];
  /** An int8 ONNX file mnq runs: what its loaded model holds (model.memory, default executor, 1 thread). */
  memory?: (ModelMemory & { executor: string; fusedGroups: number }) | null;
  /** Why memory is null (e.g. a float model). */
  memoryNote?: string;
}

/** What an ONNX file's loaded model holds in memory, or why it cannot be loaded (not an int8 model mnq runs). */
export async function memoryOf(file: string): Promise<Pick<Info, 'memory' | 'memoryNote'>> {
  let m;
  try {
    m = await load(file, { threads: 1 });
  } catch (e) {
    return { memory: null, memoryNote: `not loaded: ${(e as Error).message.split('\n')[0]}` };
  }
  try {
    return { memory: { ...m.memory, executor: m.executor, fusedGroups: m.fusedGroups } };
  } finally {
    m.dispose();
  }
}

export function info(target: string, opts: { width?: number; resolution?: number; classes?: number } = {}): Info {
  const isFile = target.toLowerCase().endsWith('.onnx') || fs.existsSync(target);
  if (isFile) {
    if (opts.width !== undefined || opts.resolution !== undefined || opts.classes !== undefined) {
      throw new UsageError('--width, --resolution and --classes apply to architectures, not ONNX files');
    }
    const s = inspectOnnx(readModel(target));
    return {
      source: target, kind: 'onnx', input: s.input.shape, params: s.params, macs: s.macs ?? null,
      convLinearMacs: s.convLinearMacs ?? null, seScaleMacs: s.seScaleMacs, convention: CONVENTION,
      layers: s.layers.map((l) => ({
        name: l.node, type: l.type, weightShape: l.weightShape, stride: l.strides[0], groups: l.group, act: l.act,
        input: l.input ?? null, output: l.output ?? null, params: l.params, macs: l.macs ?? null,
      })),
    };
  }
  const c = countArch(target, opts);
  return {
    source: target, kind: 'architecture', arch: c.net.arch, width: c.net.width, resolution: c.net.resolution,
    classes: c.net.classes, input: [3, c.net.resolution, c.net.resolution],
    params: c.params, macs: c.macs, convLinearMacs: c.convLinearMacs, seScaleMacs: c.seScaleMacs, convention: CONVENTION,
    layers: c.layers.map((l) => ({ ...l })),
  };
}

const fmt = (n: number | null, unit = 1e6, d = 2) => (n === null ? '?' : (n / unit).toFixed(d));

const FLAGS = {
  width: { type: 'string' }, resolution: { type: 'string' }, classes: { type: 'string' },
  json: { type: 'boolean' }, layers: { type: 'boolean' },
} as const;

export async function run(argv: string[]): Promise<number> {
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.help) {
      console.log(USAGE);
      return 0;
    }
    const r: Info = info(args.single('model file or architecture'), {
      width: args.number('width'), resolution: args.int('resolution'), classes: args.int('classes'),
    });
    if (r.kind === 'onnx') Object.assign(r, await memoryOf(r.source));
    if (args.bool('json')) {
      const { layers, ...rest } = r;
      console.log(JSON.stringify({ ...rest, layerCount: layers.length, ...(args.bool('layers') ? { layers } : {}) }, null, 2));
      return 0;
    }
    const what = r.kind === 'architecture' ? `MobileNet ${r.arch} width ${r.width} ${r.resolution}x${r.resolution}, ${r.classes} classes` : `${r.source} (input ${JSON.stringify(r.input)})`;
    console.log(what);
    console.log(`  params ${r.params} (${fmt(r.params)} M)`);
    console.log(`  MACs   ${r.macs ?? '?'} (${fmt(r.macs, 1e6, 1)} M; conv+linear ${fmt(r.convLinearMacs, 1e6, 1)} M, SE scale ${fmt(r.seScaleMacs, 1e6, 2)} M)`);
    console.log(`  ${r.layers.filter((l) => l.type !== 'scale').length} conv/linear layers; counting: ${r.convention}`);
    if (r.memory) {
      const kb = (b: number) => `${(b / 1024).toFixed(0)} KB`;
      console.log(`  memory: activations ${kb(r.memory.activationBytesPerImage)} per image and thread (arena ${kb(r.memory.arenaBytesPerImage)} `
        + `+ windows ${kb(r.memory.windowBytesPerThread)}, executor ${r.memory.executor}, ${r.memory.fusedGroups} fused groups), packed weights ${kb(r.memory.weightBytes)}`);
    } else if (r.memoryNote) {
      console.log(`  memory: ${r.memoryNote}`);
    }
    if (args.bool('layers')) {
      for (const l of r.layers) {
        console.log(`  ${l.name.padEnd(40)} ${l.type.padEnd(7)} w[${l.weightShape}] s${l.stride} g${l.groups} ${l.act.padEnd(8)} `
          + `${JSON.stringify(l.input)} -> ${JSON.stringify(l.output)} params ${l.params} macs ${l.macs ?? '?'}`);
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return reportUsageError('info', e);
    console.error(`mnq info: ${(e as Error).message}`);
    return 1;
  }
}
