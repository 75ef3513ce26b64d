// `mnq build <arch> ... -o out.onnx`: builds a MobileNet as float ONNX.
import * as fs from 'fs';
import * as path from 'path';
import { buildMobileNet, saveModel, BuildOptions } from '../builder';
import { numberFlag, parseArgs, UsageError } from '../builder/cli-args';

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

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  try {
    const args = parseArgs(argv,
      ['width', 'resolution', 'classes', 'weights', 'seed', 'opset', 'bn', 'padding', 'output'],
      ['json'], { '-o': 'output' });
    if (args.positional.length !== 1) {
      throw new UsageError(args.positional.length === 0 ? 'missing architecture' : `unexpected arguments: ${args.positional.slice(1).join(' ')}`);
    }
    const out = args.flags.get('output');
    if (!out) throw new UsageError('missing -o out.onnx');
    if (args.flags.has('weights') && args.flags.has('seed')) throw new UsageError('give --weights or --seed, not both');
    const bn = args.flags.get('bn');
    if (bn !== undefined && bn !== 'fold' && bn !== 'keep') throw new UsageError(`--bn must be 'fold' or 'keep', got '${bn}'`);
    const padding = args.flags.get('padding');
    if (padding !== undefined && padding !== 'symmetric' && padding !== 'tf-same') {
      throw new UsageError(`--padding must be 'symmetric' or 'tf-same', got '${padding}'`);
    }
    const weights = args.flags.get('weights');
    if (weights !== undefined && path.resolve(weights) === path.resolve(out)) {
      throw new UsageError('the output file must not be the weights file');
    }
    if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UsageError(`output '${out}' is a directory`);
    const opts: BuildOptions = {
      width: numberFlag(args, 'width'),
      resolution: numberFlag(args, 'resolution', true),
      classes: numberFlag(args, 'classes', true),
      seed: numberFlag(args, 'seed', true),
      opset: numberFlag(args, 'opset', true),
      weights,
      bn: bn as BuildOptions['bn'],
      padding: padding as BuildOptions['padding'],
    };
    const built = buildMobileNet(args.positional[0], opts); // everything in memory first
    saveModel(built, out); // atomic: no partial file on failure
    const n = built.net;
    const info = {
      output: out, arch: n.arch, width: n.width, resolution: n.resolution, classes: n.classes,
      opset: opts.opset ?? 17, params: built.counts.params, macs: built.counts.macs,
      weights: weights ?? null, seed: weights ? null : opts.seed ?? 0, load: built.load ?? null,
    };
    if (args.booleans.has('json')) console.log(JSON.stringify(info, null, 2));
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
    const err = e as Error;
    console.error(`mnq build: ${err.message}`);
    if (err instanceof UsageError) console.error(`run 'mnq build --help' for usage`);
    return err instanceof UsageError ? 2 : 1;
  }
}
