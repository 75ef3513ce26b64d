// Seeded pseudo-random numbers (mulberry32 + Box-Muller): same seed, same weights, on every machine.

// Math functions bound once: hot loops then avoid global lookups, which are slow
// inside vm contexts (jest runs tests in one).
const { imul, sqrt, log, cos, sin, PI } = Math;

export class Rng {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
    this.state = (seed ^ 0x9e3779b9) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = sqrt(-2 * log(u));
    this.spare = r * sin(2 * PI * v);
    return r * cos(2 * PI * v);
  }

  normalArray(n: number, std: number, mean = 0): Float32Array {
    // Box-Muller, both values of each pair used
    const a = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      let u = this.next();
      while (u === 0) u = this.next();
      const r = std * sqrt(-2 * log(u));
      const t = 2 * PI * this.next();
      a[i] = mean + r * cos(t);
      if (i + 1 < n) a[i + 1] = mean + r * sin(t);
    }
    return a;
  }

  uniformArray(n: number, lo: number, hi: number): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
}
