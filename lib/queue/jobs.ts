// What travels through Redis between `mnq submit` and `mnq worker`: the job data (a chunk of image sources
// and top-k), the job's return value (one result per image, in the chunk's order), the deterministic job id
// that makes re-submission a no-op, and the names of the keys mnq adds beside BullMQ's.
//
// A job is data, not a command: parseJobData checks every field, and the worker applies its own rules
// (--root, --allow-host, byte cap) to each image source.
import { createHash } from 'crypto';
import type { Prediction } from '../classify';

/** Version of the job data and return value formats. */
export const JOB_FORMAT = 1;
/** BullMQ job name of a classification job. */
export const JOB_NAME = 'classify';
/** Most images one job may name (a chunk), and the longest image source. */
export const MAX_IMAGES_PER_JOB = 4096;
export const MAX_SOURCE_LENGTH = 8192;
export const MAX_TOP_K = 1000;

/** A job: classify these images (local paths, file:// or http(s):// URLs), top-k classes each. */
export interface ClassifyJobData {
  v: typeof JOB_FORMAT;
  images: string[];
  topK: number;
}

/** The outcome of one image: its predictions, or why it failed (the reason, without the image's name). */
export type ImageResult = { predictions: Prediction[]; error?: undefined } | { error: string; predictions?: undefined };

/** A job's return value: one result per image of the job, in order, and the model that made them. */
export interface ClassifyJobResult {
  v: typeof JOB_FORMAT;
  /** the model file's name and sha256 prefix, e.g. 'v2.int8.onnx sha256:3f2a…' */
  model: string;
  results: ImageResult[];
}

/** BullMQ queue names: no ':' (BullMQ's key separator) and nothing a shell or a key would mangle. */
export function checkQueueName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) {
    throw new Error(`queue name must be 1-100 letters, digits, '.', '_' or '-' (starting with a letter or digit), got '${name}'`);
  }
}

/**
 * The job id of a chunk: a hash of its image sources and top-k. Submitting the same chunk again (a rerun
 * after a crash) finds the same job, queued, running or done, instead of adding a second one.
 */
export function chunkJobId(images: readonly string[], topK: number): string {
  const h = createHash('sha256');
  h.update(`mnq-classify v${JOB_FORMAT} top${topK}\n`);
  for (const s of images) h.update(`${s.length}:${s}\n`);
  return `mnq-${h.digest('hex').slice(0, 40)}`;
}

/** The job data of a chunk. */
export function jobData(images: readonly string[], topK: number): ClassifyJobData {
  return { v: JOB_FORMAT, images: [...images], topK };
}

/** Checks job data received from Redis; throws an Error saying what is wrong. */
export function parseJobData(data: unknown): ClassifyJobData {
  const d = data as Partial<ClassifyJobData> | null;
  if (!d || typeof d !== 'object') throw new Error('job data is not an object');
  if (d.v !== JOB_FORMAT) throw new Error(`job data format ${JSON.stringify(d.v)} is not ${JOB_FORMAT} (a job from another program or mnq version)`);
  if (!Array.isArray(d.images) || d.images.length === 0 || d.images.length > MAX_IMAGES_PER_JOB) {
    throw new Error(`job data: images must be a list of 1..${MAX_IMAGES_PER_JOB} image sources`);
  }
  for (const s of d.images) {
    if (typeof s !== 'string' || s.length === 0 || s.length > MAX_SOURCE_LENGTH || s.includes('\0')) {
      throw new Error(`job data: every image source must be a non-empty string of at most ${MAX_SOURCE_LENGTH} characters without NUL`);
    }
  }
  if (!Number.isInteger(d.topK) || (d.topK as number) < 1 || (d.topK as number) > MAX_TOP_K) {
    throw new Error(`job data: topK must be an integer in 1..${MAX_TOP_K}`);
  }
  return { v: JOB_FORMAT, images: d.images, topK: d.topK as number };
}

/** Checks a job's return value read back from Redis against the number of images of its chunk. */
export function parseJobResult(value: unknown, images: number): ClassifyJobResult {
  const r = value as Partial<ClassifyJobResult> | null;
  if (!r || typeof r !== 'object' || r.v !== JOB_FORMAT || !Array.isArray(r.results) || typeof r.model !== 'string') {
    throw new Error('the job returned a value that is not an mnq classification result');
  }
  if (r.results.length !== images) throw new Error(`the job returned ${r.results.length} results for ${images} images`);
  for (const x of r.results) {
    if (!x || typeof x !== 'object' || (!Array.isArray(x.predictions) && typeof x.error !== 'string')) {
      throw new Error('the job returned a result that has neither predictions nor an error');
    }
  }
  return r as ClassifyJobResult;
}

/** The Redis stream workers append each finished job's results to (a live feed; at least once per job). */
export function resultsStreamKey(queue: string): string {
  return `mnq:${queue}:results`;
}

/** Jobs kept in the results stream (approximately: Redis trims whole nodes); about 30 KB each at 64 images, top-5. */
export const RESULTS_STREAM_MAXLEN = 1000;
