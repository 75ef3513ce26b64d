// Image folders for calibration and comparison: listing, streaming decode to
// float NCHW through lib/image, labels from ImageNet wnids in file names.
import * as fs from 'fs';
import * as path from 'path';
import { decodeToPixels } from '../image/decode';
import { floatTable, pixelsToFloatNCHW } from '../image/preprocess';
import { PreprocessSpec } from '../preprocess-spec';

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|avif|heic|heif|bmp)$/i;

/** Image files in `dir` (sorted by name; not recursive). Throws a clear Error when there are none. */
export function listImages(dir: string, limit?: number): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new Error(`images: '${dir}' does not exist`);
  }
  let files: string[];
  if (st.isDirectory()) {
    files = fs.readdirSync(dir).filter((f) => IMAGE_EXT.test(f)).sort().map((f) => path.join(dir, f));
  } else {
    files = [dir];
  }
  if (files.length === 0) throw new Error(`images: no image files (.jpg, .png, .webp, …) in '${dir}'`);
  if (limit !== undefined && limit > 0) files = files.slice(0, limit);
  return files;
}

export interface LoadedImage { file: string; data: Float32Array }

/**
 * Decodes images one at a time into float NCHW of [3, height, width] (only one image in memory per
 * step). Unreadable images are reported to `onSkip` and skipped.
 */
export async function* streamImages(
  files: string[], spec: PreprocessSpec, width: number, height: number, onSkip: (file: string, why: string) => void,
): AsyncGenerator<LoadedImage> {
  const table = floatTable(spec);
  for (const file of files) {
    let px;
    try {
      px = await decodeToPixels(file, spec, width, height);
    } catch (e) {
      onSkip(file, (e as Error).message);
      continue;
    }
    const data = new Float32Array(3 * width * height);
    pixelsToFloatNCHW(new Uint8Array(px.data.buffer, px.data.byteOffset, px.data.length), table, data, 0);
    yield { file, data };
  }
}

/** A one-line progress bar on a terminal (stderr); silent when not a TTY or when quiet. */
export class Progress {
  private last = 0;
  constructor(private label: string, private total: number, private quiet: boolean) {}
  tick(done: number): void {
    if (this.quiet || !process.stderr.isTTY) return;
    const now = Date.now();
    if (done < this.total && now - this.last < 100) return;
    this.last = now;
    const w = 30, f = Math.round((w * done) / Math.max(1, this.total));
    process.stderr.write(`\r${this.label} [${'#'.repeat(f)}${'.'.repeat(w - f)}] ${done}/${this.total}`);
    if (done >= this.total) process.stderr.write('\n');
  }
}
