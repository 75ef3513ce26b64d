// Seeded random weights: He-normal convolutions (fan-in, so activations keep a
// realistic scale through the depth), non-trivial BN statistics, small biases.
// Same seed and architecture -> bit-identical weights.
import { LayerWeights } from './emit';
import { Net, weightLayers, weightShape } from './net';
import { Rng } from './rng';

export function randomWeights(net: Net, seed: number): LayerWeights[] {
  const rng = new Rng(seed);
  return weightLayers(net).map((l) => {
    const shape = weightShape(l);
    const n = shape.reduce((a, b) => a * b, 1);
    const outC = shape[0];
    const fanIn = n / outC;
    const gain = l.act === 'none' || l.act === 'hsigmoid' ? 1 : 2;
    const weight = rng.normalArray(n, Math.sqrt(gain / fanIn));
    if (l.kind === 'conv' && l.bn) {
      return {
        weight,
        bias: new Float32Array(outC),
        bn: {
          gamma: rng.uniformArray(outC, 0.8, 1.2),
          beta: rng.normalArray(outC, 0.1),
          mean: rng.normalArray(outC, 0.1),
          variance: rng.uniformArray(outC, 0.8, 1.2),
          eps: 1e-5,
        },
      };
    }
    return { weight, bias: rng.uniformArray(outC, -0.1, 0.1) };
  });
}
