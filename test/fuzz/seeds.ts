// The models the fuzz suite damages: the synthetic int8 graphs of test/helpers/tiny-models.ts (every QDQ pattern
// the compiler reads, small enough for thousands of cases) and, when present, real int8 models from the shared
// folder or any folder given (QDQ and QOperator, as exporters write them).
import * as fs from 'fs';
import * as path from 'path';
import { tinyConvModel, tinyHeadModel, withNhwcInput } from '../helpers/tiny-models';
import { SeedModel } from './generate';

export function tinySeeds(): SeedModel[] {
  return [
    { name: 'tiny-conv-relu-u8', bytes: tinyConvModel({ act: 'Relu', uint8: true }) },
    { name: 'tiny-conv-clip-i8-hswish', bytes: tinyConvModel({ act: 'Clip', uint8: false, lut: 'HardSwish' }) },
    { name: 'tiny-conv-maxpool-pad', bytes: tinyConvModel({ maxPool: { ceil: true, requantize: true }, pad: 'qdq' }) },
    { name: 'tiny-conv-pieces-nhwc', bytes: withNhwcInput(tinyConvModel({ pieces: true, pad: 'float' }), true) },
    { name: 'tiny-head', bytes: tinyHeadModel() },
    { name: 'tiny-head-qsoftmax', bytes: tinyHeadModel({ quantizedSoftmax: true }) },
  ];
}

/** The *.onnx files of `dir` (sorted by name), at most `max` of them. */
export function folderSeeds(dir: string, max = Infinity): SeedModel[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort().slice(0, max)
    .map((f) => ({ name: f, bytes: new Uint8Array(fs.readFileSync(path.join(dir, f))) }));
}
