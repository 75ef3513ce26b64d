// The parity rule of the tests: mnq's int8 tensors equal ONNX Runtime's, every element (README,
// "Parity with ONNX Runtime"). A failure names the tensor, how much differs, and the first difference.

export interface Int8Diff {
  /** elements compared, and how many differ */
  total: number;
  differ: number;
  maxDiff: number;
  /** the first differing element, or null when identical */
  first: { index: number; ours: number; theirs: number } | null;
}

export function diffInt8(ours: Int8Array, theirs: Int8Array): Int8Diff {
  if (ours.length !== theirs.length) throw new Error(`int8 tensors of different lengths: mnq ${ours.length}, ORT ${theirs.length}`);
  let differ = 0, maxDiff = 0;
  let first: Int8Diff['first'] = null;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - theirs[i]);
    if (d === 0) continue;
    differ++;
    if (d > maxDiff) maxDiff = d;
    if (!first) first = { index: i, ours: ours[i], theirs: theirs[i] };
  }
  return { total: ours.length, differ, maxDiff, first };
}

/**
 * "<name>: identical (N values)" or "<name>: K of N values differ (P% identical), max diff D; first at
 * <where(index)>: mnq a, ORT b". `where` names an index (e.g. image and class); default "index i";
 * `names` the two sides (default mnq, ORT).
 */
export function describeDiff(name: string, d: Int8Diff, where: (i: number) => string = (i) => `index ${i}`,
  names: [string, string] = ['mnq', 'ORT']): string {
  if (!d.first) return `${name}: identical (${d.total} values)`;
  const pct = ((1 - d.differ / d.total) * 100).toFixed(3);
  return `${name}: ${d.differ} of ${d.total} values differ (${pct}% identical), max diff ${d.maxDiff}; `
    + `first at ${where(d.first.index)}: ${names[0]} ${d.first.ours}, ${names[1]} ${d.first.theirs}`;
}

/** Asserts every element identical; the failure message is describeDiff's. */
export function expectIdentical(name: string, ours: Int8Array, theirs: Int8Array, where?: (i: number) => string): void {
  const d = diffInt8(ours, theirs);
  expect(d.differ === 0 ? `${name}: identical` : describeDiff(name, d, where)).toBe(`${name}: identical`);
}
