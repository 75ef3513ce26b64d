// The JSONL file `mnq submit -o` writes: one line per input image, in input order, the shape of
// `mnq classify --json`: {"image": NAME, "predictions": [...]} or {"image": NAME, "error": "NAME: reason"}.
// Lines are appended in order and synced to disk chunk by chunk, so after a crash the file holds a prefix
// of the results (perhaps with a cut-off last line); resumeResults finds that prefix and cuts the rest.
import * as fs from 'fs';
import type { ImageResult } from './jobs';

/** The output line of one image. */
export function resultLine(image: string, r: ImageResult): string {
  return JSON.stringify(r.error !== undefined ? { image, error: `${image}: ${r.error}` } : { image, predictions: r.predictions });
}

/**
 * How many images of `names` the results file already holds, in order (0 when it does not exist). A
 * last line without its newline (a crash while writing) is cut off. Throws when a complete line is not
 * JSON or names another image than the input at its position: the file belongs to another input list.
 */
export async function resumeResults(file: string, names: readonly string[]): Promise<number> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  let count = 0;
  let complete = 0; // bytes up to the end of the last complete line
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let carry = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      let data = Buffer.concat([carry, buf.subarray(0, bytesRead)]);
      let nl: number;
      while ((nl = data.indexOf(0x0a)) >= 0) {
        const line = data.subarray(0, nl).toString('utf8');
        data = data.subarray(nl + 1);
        complete += nl + 1;
        count++;
        let image: unknown;
        try {
          image = (JSON.parse(line) as { image?: unknown }).image;
        } catch {
          throw new Error(`${file}: line ${count} is not JSON; it is not a results file of mnq submit (use another -o file, or delete it)`);
        }
        if (count > names.length) {
          throw new Error(`${file} has more lines than the ${names.length} input images: it holds the results of another input (use another -o file, or delete it)`);
        }
        if (image !== names[count - 1]) {
          throw new Error(`${file}: line ${count} is for ${JSON.stringify(image)} but input image ${count} is ${JSON.stringify(names[count - 1])}: the file holds the results of another input (use another -o file, or delete it)`);
        }
      }
      carry = Buffer.from(data);
    }
    if (carry.length) await handle.truncate(complete);
  } finally {
    await handle.close();
  }
  return count;
}

/** Appends result lines to the results file, each batch synced to disk before append() returns. */
export class ResultsWriter {
  private readonly fd: number;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'a');
  }

  append(lines: readonly string[]): void {
    if (!lines.length) return;
    const bytes = Buffer.from(lines.join('\n') + '\n', 'utf8');
    for (let off = 0; off < bytes.length;) off += fs.writeSync(this.fd, bytes, off);
    fs.fdatasyncSync(this.fd);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
