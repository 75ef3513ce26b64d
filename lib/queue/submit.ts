// `mnq submit`: sends images to a BullMQ queue in chunks and writes every image's result to a JSONL file in
// input order, exactly once, however often jobs run.
//
// - Each chunk is one job whose id is a hash of its image sources and top-k (chunkJobId): adding it again
//   finds the job that is already there, queued, running or done.
// - Workers run jobs at least once (a job whose worker died runs again). The output is exactly once by
//   construction: line i is written once, by this one writer, from the return value of the job of image i's
//   chunk, when every line before it has been written.
// - At most `inFlight` chunks are in Redis at once (queued, running or done but not yet written); a chunk's
//   job is removed once its lines are on disk.
// - Resuming: the lines already in the output file are kept (resumeResults) and their chunks are not sent;
//   the others are added again, which finds their jobs if they are still there (done ones are read, failed
//   ones are retried) and queues them otherwise.
// - Redis restarting: commands wait for the connection to come back (maxRetriesPerRequest: null); every
//   `reconcileMs` each pending chunk's job is looked up, so a completion whose event was missed is found and a
//   job that Redis lost (a restart without persistence) is queued again.
import type { ConnectionOptions, Job, JobsOptions } from 'bullmq';
import * as path from 'path';
import { SubmitImage } from './inputs';
import { chunkJobId, ClassifyJobData, ClassifyJobResult, ImageResult, JOB_NAME, jobData, parseJobResult } from './jobs';
import { resultLine, ResultsWriter, resumeResults } from './results-file';
import { errorLog } from './redis';
import { requireOptional } from '../optional-dependencies';

export interface SubmitOptions {
  connection: ConnectionOptions;
  queue: string;
  images: readonly SubmitImage[];
  /** the JSONL output file (resumed when it exists) */
  output: string;
  /** images per job (default 64) */
  chunk?: number;
  /** classes per image (default 5) */
  topK?: number;
  /** most chunks in Redis at once (default 256) */
  inFlight?: number;
  /** runs of a job that fails (throws) before its images are reported as failed (default 3) */
  attempts?: number;
  /** ms between look-ups of every pending job (default 2000) */
  reconcileMs?: number;
  /** called whenever results arrive */
  onProgress?: (p: SubmitProgress) => void;
  /** notes: resumed, lost jobs, connection trouble */
  log?: (message: string) => void;
}

export interface SubmitProgress {
  /** images this run has to classify (all minus those already in the output file) */
  total: number;
  /** of those, images with a result (predictions or error) */
  done: number;
  /** of those, images with an error */
  failed: number;
  /** seconds since the run started */
  seconds: number;
}

export interface SubmitSummary extends SubmitProgress {
  /** images whose lines were in the output file already */
  resumed: number;
  /** jobs that ran again after their worker died (BullMQ's stalled-job recovery) */
  recovered: number;
  /** jobs that failed after all attempts (their images are errors in the output) */
  failedJobs: number;
  /** the models that made the results (more than one: the workers ran different models) */
  models: string[];
}

export const SUBMIT_DEFAULTS = { chunk: 64, topK: 5, inFlight: 256, attempts: 3, reconcileMs: 2000 };
/** Done and failed jobs that nobody collects are removed by BullMQ after a week. */
const KEEP_SECONDS = 7 * 24 * 3600;

interface Chunk {
  index: number;
  /** index of its first image */
  first: number;
  images: readonly SubmitImage[];
  id: string;
}

type Outcome = { results: ImageResult[] };

/** Submits the images and writes their results; resolves when every image has its line in the output. */
export async function submitImages(o: SubmitOptions): Promise<SubmitSummary> {
  const { Job, Queue, QueueEvents } = requireOptional<typeof import('bullmq')>('bullmq');
  const d = SUBMIT_DEFAULTS;
  const size = o.chunk ?? d.chunk;
  const topK = o.topK ?? d.topK;
  const inFlight = o.inFlight ?? d.inFlight;
  const attempts = o.attempts ?? d.attempts;
  const reconcileMs = o.reconcileMs ?? d.reconcileMs;
  const log = o.log ?? (() => undefined);
  for (const [k, v] of Object.entries({ chunk: size, topK, inFlight, attempts })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`);
  }
  if (!o.images.length) throw new Error('no images to submit');

  const chunks: Chunk[] = [];
  for (let first = 0; first < o.images.length; first += size) {
    const images = o.images.slice(first, first + size);
    chunks.push({ index: chunks.length, first, images, id: chunkJobId(images.map((i) => i.source), topK) });
  }
  const resumed = await resumeResults(o.output, o.images.map((i) => i.name));
  const t0 = Date.now();
  const summary: SubmitSummary = {
    total: o.images.length - resumed, done: 0, failed: 0, seconds: 0, resumed, recovered: 0, failedJobs: 0, models: [],
  };
  if (resumed === o.images.length) {
    log(`${o.output} already holds all ${resumed} results: nothing to do`);
    return summary;
  }
  if (resumed) log(`${path.basename(o.output)} already holds ${resumed} of ${o.images.length} results: resuming after them`);

  const writer = new ResultsWriter(o.output);
  const queue = new Queue<ClassifyJobData, ClassifyJobResult>(o.queue, { connection: o.connection });
  const events = new QueueEvents(o.queue, { connection: o.connection });
  const errors = errorLog(log);
  queue.on('error', errors.error);
  events.on('error', errors.error);

  const jobOptions = (c: Chunk): JobsOptions => ({
    jobId: c.id, attempts, backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: KEEP_SECONDS }, removeOnFail: { age: KEEP_SECONDS },
  });
  const addJob = (c: Chunk) => queue.add(JOB_NAME, jobData(c.images.map((i) => i.source), topK), jobOptions(c));

  // the window: chunks [head, next) are in Redis; `outcomes` holds those whose results are known
  let head = Math.floor(resumed / size);
  let next = head;
  let written = resumed;
  const outcomes = new Map<number, Outcome>();
  const windowIds = new Map<string, number[]>(); // job id -> window chunks with that id (equal chunks share a job)
  const signalled = new Set<string>();
  let wake: (() => void) | undefined;
  const signal = (id: string): void => {
    if (!windowIds.has(id)) return;
    signalled.add(id);
    wake?.();
  };
  events.on('completed', ({ jobId }) => signal(jobId));
  events.on('failed', ({ jobId }) => signal(jobId));

  const progress = (): void => {
    summary.seconds = (Date.now() - t0) / 1000;
    o.onProgress?.({ total: summary.total, done: summary.done, failed: summary.failed, seconds: summary.seconds });
  };

  const settle = (id: string, outcome: Outcome, job?: Job): void => {
    for (const ci of windowIds.get(id) ?? []) {
      if (outcomes.has(ci)) continue;
      outcomes.set(ci, outcome);
      const c = chunks[ci];
      outcome.results.forEach((r, k) => {
        if (c.first + k < resumed) return;
        summary.done++;
        if (r.error !== undefined) summary.failed++;
      });
    }
    if (job && job.stalledCounter > 0) summary.recovered++;
  };

  /** Looks a pending job up; `fresh`: just (re)added by this run, so a failure from an earlier run is retried. */
  const check = async (id: string, fresh: boolean): Promise<void> => {
    const ci = (windowIds.get(id) ?? [])[0];
    if (ci === undefined || outcomes.has(ci)) return;
    const c = chunks[ci];
    const images = `images ${c.first + 1}-${c.first + c.images.length}`;
    // the state first, then the job: a job read before it finished and found finished afterwards would have
    // no return value yet; once finished, its fields no longer change
    const state = await queue.getJobState(id);
    if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return; // queued or running
    const job = await Job.fromId<ClassifyJobData, ClassifyJobResult>(queue, id);
    if (state === 'unknown' || !job) {
      // Redis lost it (restarted without persistence), or it is in no list, or someone removed it: queue it again
      if (job) await job.remove().catch(() => undefined);
      log(`job ${id} (${images}) was not in Redis any more; queued again`);
      await addJob(c);
      return;
    }
    if (state === 'completed') {
      let outcome: Outcome;
      try {
        const r = parseJobResult(job.returnvalue, c.images.length);
        if (!summary.models.includes(r.model)) summary.models.push(r.model);
        outcome = { results: r.results };
      } catch (e) {
        summary.failedJobs++;
        outcome = { results: c.images.map(() => ({ error: `job ${id}: ${(e as Error).message}` })) };
      }
      settle(id, outcome, job);
    } else {
      if (fresh) {
        log(`job ${id} (${images}) had failed in an earlier run: retrying it`);
        // (another submit of the same chunk may have retried it first)
        await job.retry('failed').catch((e: Error) => log(`job ${id}: could not retry it (${e.message})`));
        return;
      }
      summary.failedJobs++;
      const why = job.failedReason || 'unknown reason';
      settle(id, { results: c.images.map(() => ({ error: `job ${id} failed after ${job.attemptsMade} attempt(s): ${why}` })) }, job);
    }
  };

  /** Adds chunks to the window up to `inFlight`; returns the ids added. */
  const fill = async (): Promise<string[]> => {
    const added: Chunk[] = [];
    while (next < chunks.length && next - head < inFlight) {
      const c = chunks[next++];
      const same = windowIds.get(c.id);
      if (same) same.push(c.index);
      else {
        windowIds.set(c.id, [c.index]);
        added.push(c);
      }
      // an equal chunk already settled in the window gives this one its outcome too
      const known = same && outcomes.get(same[0]);
      if (known) settle(c.id, known);
    }
    if (added.length) await queue.addBulk(added.map((c) => ({ name: JOB_NAME, data: jobData(c.images.map((i) => i.source), topK), opts: jobOptions(c) })));
    return added.map((c) => c.id);
  };

  /** Writes the settled chunks at the head of the window, in order, and removes their jobs. */
  const drain = async (): Promise<void> => {
    while (head < next && outcomes.has(head)) {
      const c = chunks[head];
      const { results } = outcomes.get(head) as Outcome;
      const lines: string[] = [];
      results.forEach((r, k) => {
        if (c.first + k >= written) lines.push(resultLine(c.images[k].name, r));
      });
      writer.append(lines);
      written = c.first + c.images.length;
      outcomes.delete(head);
      const ids = windowIds.get(c.id) as number[];
      ids.shift();
      if (!ids.length) {
        windowIds.delete(c.id);
        // collected: the job is no longer needed (a job still locked by a duplicate run stays until it expires)
        await queue.remove(c.id).catch(() => undefined);
      }
      head++;
    }
  };

  try {
    await queue.waitUntilReady();
    await events.waitUntilReady();
    let lastReconcile = Date.now();
    for (const id of await fill()) await check(id, true);
    progress();
    while (head < chunks.length) {
      await drain();
      const added = await fill();
      for (const id of added) await check(id, true);
      if (head >= chunks.length) break;
      if (!signalled.size && !added.length) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, Math.max(0, reconcileMs - (Date.now() - lastReconcile)));
        });
        clearTimeout(timer);
        wake = undefined;
      }
      let ids: string[];
      if (Date.now() - lastReconcile >= reconcileMs) {
        ids = [...windowIds.keys()];
        lastReconcile = Date.now();
      } else ids = [...signalled];
      signalled.clear();
      await Promise.all(ids.map((id) => check(id, false)));
      // commands went through: if there were errors, the connection is back
      if (ids.length) errors.ready();
      progress();
    }
    await drain();
    progress();
  } finally {
    writer.close();
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
  return summary;
}
