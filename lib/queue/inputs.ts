// The images `mnq submit` sends: a directory (its image files, recursively, in the order `mnq classify DIR`
// takes them) or a list file (one local path or URL per line; blank lines and lines starting with '#' are
// skipped). Each image has the name its output line shows (as `mnq classify` would print it, or the line as
// written) and the source a worker reads: an absolute local path, or the URL as given.
import * as fs from 'fs';
import * as path from 'path';
import { listImageFiles } from '../cli/classify';

export interface SubmitImage {
  /** the image as the output names it */
  name: string;
  /** what the job sends to the worker: an absolute path or a URL */
  source: string;
}

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** The images of a directory or a list file, in order. Throws when there are none. */
export function listSubmitImages(input: string): SubmitImage[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(input);
  } catch {
    throw new Error(`${input}: no such directory or list file`);
  }
  let images: SubmitImage[];
  if (st.isDirectory()) {
    images = listImageFiles(input).map((f) => ({ name: f, source: path.resolve(f) }));
    if (!images.length) throw new Error(`${input}: directory contains no image files (.jpg, .png, .webp, …)`);
    return images;
  }
  // relative paths in a list are relative to the list file's directory
  const base = path.dirname(path.resolve(input));
  images = [];
  for (const raw of fs.readFileSync(input, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    images.push({ name: line, source: URL_SCHEME.test(line) ? line : path.resolve(base, line) });
  }
  if (!images.length) throw new Error(`${input}: the list names no images (one path or URL per line)`);
  return images;
}
