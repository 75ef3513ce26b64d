// `mnq build <arch> ... -o out.onnx`: builds a MobileNet as float ONNX.
import * as fs from 'fs';
import * as path from 'path';
import { buildMobileNet, saveModel, BuildOptions } from '../builder';
import { parseArgs, reportUsageError, UsageError } from './args';

export const summary = 'build a MobileNet (v1, v2, v3-large, v3-small) as float ONNX, random or loaded weights';

const USAGE = `usage: mnq build <v1|v2|v3-large|v3-small> [options] -o out.onnx

  --width W         width multiplier > 0 (default 1.0; with --weights: detected)
  --resolution R    input size, a multiple of 32, >= 32 (default 224; with --weights: the file's)
  --classes C       number of classes (default 1000; with --weights: the file's)
  --weights FILE    load conv/linear weights from a float ONNX MobileNet (torchvision or TF-derived)
  --seed N          seed for random weights (default 0); not with --weights
  --opset N         ONNX opset, 13 or 17 (13..21 accepted; default 17)
  --bn fold|keep    fold batch norm into the convs (default) or keep BatchNormalization nodes
  --padding symmetric|tf-same   conv padding (default symmetric; with --weights: the file's)
  --json            print the result as JSON
  -o, --output FILE output ONNX file (written only when the build succeeds)`;

const FLAGS = {
  width: { type: 'string' }, resolution: { type: 'string' }, classes: { type: 'string' }, weights: { type: 'string' },
  seed: { type: 'string' }, opset: { type: 'string' }, bn: { type: 'string' }, padding: { type: 'string' },
  json: { type: 'boolean' }, output: { type: 'string', short: 'o' },
} as const;

export async function run(argv: string[]): Promise<number> {
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.help) {
      console.log(USAGE);
      return 0;
    }
    const arch = args.single('architecture');
    const out = args.required('output', 'missing -o out.onnx');
    if (args.has('weights') && args.has('seed')) throw new UsageError('give --weights or --seed, not both');
    const bn = args.choice('bn', ['fold', 'keep'] as const);
    const padding = args.choice('padding', ['symmetric', 'tf-same'] as const);
    const weights = args.string('weights');
    if (weights !== undefined && path.resolve(weights) === path.resolve(out)) {
      throw new UsageError('the output file must not be the weights file');
    }
    if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UsageError(`output '${out}' is a directory`);
    const opts: BuildOptions = {
      width: args.number('width'),
      resolution: args.int('resolution'),
      classes: args.int('classes'),
      seed: args.int('seed'),
      opset: args.int('opset'),
      weights,
      bn,
      padding,
    };
    const built = buildMobileNet(arch, opts); // everything in memory first
    saveModel(built, out); // atomic: no partial file on failure
    const n = built.net;
    const info = {
      output: out, arch: n.arch, width: n.width, resolution: n.resolution, classes: n.classes,
      opset: opts.opset ?? 17, params: built.counts.params, macs: built.counts.macs,
      weights: weights ?? null, seed: weights ? null : opts.seed ?? 0, load: built.load ?? null,
    };
    if (args.bool('json')) console.log(JSON.stringify(info, null, 2));
    else {
      console.log(`wrote ${out}: MobileNet ${n.arch} width ${n.width} ${n.resolution}x${n.resolution}, ${n.classes} classes, opset ${info.opset}`);
      console.log(`  ${(info.params / 1e6).toFixed(3)} M params, ${(info.macs / 1e6).toFixed(1)} M MACs, weights: ${weights ?? `random (seed ${info.seed})`}`);
      if (built.load) {
        const l = built.load;
        console.log(`  loaded ${l.layers} layers, padding ${l.padding}${l.inputTransform ? `, input rescale x*${l.inputTransform.scale}+${l.inputTransform.bias} kept` : ''}`);
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return reportUsageError('build', e);
    console.error(`mnq build: ${(e as Error).message}`);
    return 1;
  }
}
