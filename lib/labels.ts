// Class labels: the ImageNet label sets shipped in models/labels/, label files, the 1000 / 1001-class
// (background at index 0) offset, and the class of an image from the ImageNet wnid in its file name.
import * as fs from 'fs';
import * as path from 'path';

/** models/labels/ of the package (lib/labels.ts and dist/labels.js are both one level below the root). */
export const LABELS_DIR = path.resolve(__dirname, '..', 'models', 'labels');

/** The label sets shipped with mnq. */
export const LABEL_SETS: Readonly<Record<string, string>> = Object.freeze({
  /** 1001 names, 'background' at 0 then the 1000 ImageNet classes (TF-slim / Coral / TFLite models) */
  'imagenet-1001': 'imagenet-1001.txt',
  /** the 1000 ImageNet classes in wnid order (torchvision, Keras, ONNX Model Zoo models) */
  'imagenet-1000': 'imagenet-1000.txt',
});

/** Labels of a model's output, with what is known about how they map to ImageNet classes. */
export interface Labels {
  /** where they came from: a label set name or a file path */
  source: string;
  names: string[];
  /** output index of ImageNet class 0 (1 when index 0 is 'background', else 0); undefined when not ImageNet */
  imagenetOffset?: number;
}

const cache = new Map<string, string[]>();

function readLines(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  return lines.map((l) => l.trim());
}

/**
 * Reads a label set by name ('imagenet-1001', 'imagenet-1000') or a label file: one label per line, or a
 * TSV/CSV whose last column is the name (a header line starting with 'index' is skipped).
 */
export function loadLabels(nameOrFile: string): Labels {
  const set = LABEL_SETS[nameOrFile];
  if (set) {
    const file = path.join(LABELS_DIR, set);
    let names = cache.get(file);
    if (!names) {
      names = readLines(file);
      cache.set(file, names);
    }
    return { source: nameOrFile, names, imagenetOffset: nameOrFile === 'imagenet-1001' ? 1 : 0 };
  }
  let lines: string[];
  try {
    lines = readLines(nameOrFile);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read labels '${nameOrFile}': ${code === 'ENOENT' ? 'no such file, and not a known label set (' + Object.keys(LABEL_SETS).join(', ') + ')' : (e as Error).message}`);
  }
  if (lines.length === 0) throw new Error(`labels file '${nameOrFile}' is empty`);
  if (/^index[\t,]/i.test(lines[0])) lines = lines.slice(1);
  const names = lines.map((l) => {
    const tab = l.split('\t');
    return tab.length > 1 ? tab[tab.length - 1] : l;
  });
  const imagenetOffset = names.length === 1001 && /^background$/i.test(names[0]) ? 1 : names.length === 1000 ? 0 : undefined;
  return { source: nameOrFile, names, imagenetOffset };
}

/** ImageNet labels for a model with `classes` outputs (1001: background first; 1000), else undefined. */
export function imagenetLabelsFor(classes: number): Labels | undefined {
  if (classes === 1001) return loadLabels('imagenet-1001');
  if (classes === 1000) return loadLabels('imagenet-1000');
  return undefined;
}

/** Checks that labels fit a model's number of outputs; throws a clear Error when they don't. */
export function checkLabels(labels: Labels, classes: number): void {
  if (labels.names.length !== classes) {
    const hint = labels.names.length === 1000 && classes === 1001
      ? " (the model has a 'background' class at index 0: use imagenet-1001)"
      : labels.names.length === 1001 && classes === 1000 ? ' (the model has no background class: use imagenet-1000)' : '';
    throw new Error(`labels '${labels.source}' have ${labels.names.length} entries but the model has ${classes} outputs${hint}`);
  }
}

let wnidIndex: Map<string, number> | undefined;

/** The 1000 ImageNet wnids in class order (n01440764 = 0 … n15075141 = 999). */
export function imagenetWnids(): string[] {
  const file = path.join(LABELS_DIR, 'imagenet-wnids.txt');
  let w = cache.get(file);
  if (!w) {
    w = readLines(file);
    cache.set(file, w);
  }
  return w;
}

/** ImageNet class index 0..999 of a wnid ('n01440764' → 0), or -1. */
export function imagenetClassOfWnid(wnid: string): number {
  if (!wnidIndex) wnidIndex = new Map(imagenetWnids().map((w, i) => [w, i]));
  return wnidIndex.get(wnid) ?? -1;
}

/**
 * The ImageNet class 0..999 of an image from the wnid in its file name ('n01440764_tench.JPEG',
 * 'ILSVRC2012_val_…_n01440764.JPEG', '…/n01440764/x.jpg'), or -1 when the name has no known wnid.
 */
export function imagenetClassOfFile(file: string): number {
  const m = file.match(/n\d{8}/g);
  if (!m) return -1;
  // the last wnid wins: it is the file name's, not a directory's, when both are present
  for (let i = m.length - 1; i >= 0; i--) {
    const c = imagenetClassOfWnid(m[i]);
    if (c >= 0) return c;
  }
  return -1;
}

/** Output index for an ImageNet class 0..999 given the model's labels (adds 1 for 1001-class models). */
export function outputIndexOfImagenetClass(cls: number, labels: Labels | number): number {
  const offset = typeof labels === 'number' ? (labels === 1001 ? 1 : 0) : labels.imagenetOffset ?? 0;
  return cls + offset;
}
