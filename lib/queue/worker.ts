// A BullMQ worker that classifies the images of each job with one Classifier: it reads the images under
// the worker's rules (ImageFetcher), classifies them in batches (a job is a chunk of images; decoding of the
// next batch overlaps the current one), returns one result per image as the job's return value and appends
// the same results to the queue's results stream. A bad image is a per-image error in the results, never a
// failed job; a job fails only when classification itself cannot run (then BullMQ retries it).
//
// Crashes: a worker holds a lock on each job it runs, renewed every lockDuration / 2. A worker that dies
// (SIGKILL, power loss) stops renewing it; after lockDuration the lock expires, and the stalled-job check
// that every worker runs each stalledInterval moves the job back to the queue for another worker. A job
// that stalls more than maxStalledCount times fails ("job stalled more than allowable limit").
import type { ConnectionOptions, Job, Worker } from 'bullmq';
import { requireOptional } from '../optional-dependencies';
import type { Classifier } from '../classify';
import { ImageError } from '../image';
import { FetchError, ImageFetcher } from './fetch-image';
import { errorLog } from './redis';
import {
  ClassifyJobData, ClassifyJobResult, ImageResult, JOB_FORMAT, parseJobData, RESULTS_STREAM_MAXLEN, resultsStreamKey,
} from './jobs';

export interface QueueWorkerOptions {
  connection: ConnectionOptions;
  queue: string;
  classifier: Classifier;
  /** names the model in each job's return value (file name and sha256 prefix) */
  modelId: string;
  fetcher: ImageFetcher;
  /** jobs run at once by this worker (default 2: the next chunk is read and decoded while one runs) */
  concurrency?: number;
  /** ms a job's lock lasts without renewal (default 30000) */
  lockDuration?: number;
  /** ms between stalled-job checks (default 15000) */
  stalledInterval?: number;
  /** times a job may be recovered from a dead worker before it fails (default 2) */
  maxStalledCount?: number;
  /** images read at once within a job (default 8) */
  fetchConcurrency?: number;
  /** where lines about connection events, failures and (with logJobs) each job go */
  log?: (message: string) => void;
  /** a line when each job starts and ends (default true) */
  logJobs?: boolean;
}

export const WORKER_DEFAULTS = { concurrency: 2, lockDuration: 30000, stalledInterval: 15000, maxStalledCount: 2, fetchConcurrency: 8 };

/** Runs `f` over `items` with at most `limit` calls at once; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** The reason of an ImageError, without the image name it starts with. */
function reason(e: ImageError): string {
  const prefix = `${e.image}: `;
  return e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
}

/** Reads and classifies the images of one job: one result per image, in order. */
export async function classifyJobImages(
  classifier: Classifier, fetcher: ImageFetcher, data: ClassifyJobData, fetchConcurrency = WORKER_DEFAULTS.fetchConcurrency,
): Promise<ImageResult[]> {
  const results: ImageResult[] = new Array(data.images.length);
  const bytes = await mapLimit(data.images, fetchConcurrency, async (source) => {
    try {
      return await fetcher.fetch(source);
    } catch (e) {
      if (e instanceof FetchError) return e;
      throw e;
    }
  });
  const readable: number[] = [];
  bytes.forEach((b, i) => {
    if (b instanceof FetchError) results[i] = { error: b.message };
    else readable.push(i);
  });
  if (readable.length) {
    for await (const r of classifier.classifyEach(readable.map((i) => bytes[i] as Uint8Array), { topK: data.topK })) {
      const i = readable[r.position];
      results[i] = r.error ? { error: reason(r.error) } : { predictions: r.predictions ?? [] };
    }
  }
  return results;
}

export interface RunningWorker {
  readonly worker: Worker<ClassifyJobData, ClassifyJobResult>;
  /** stops taking jobs, lets the running ones finish, disconnects */
  close(): Promise<void>;
}

/** Starts a worker on the queue; it runs until close(). */
export async function startQueueWorker(o: QueueWorkerOptions): Promise<RunningWorker> {
  const { UnrecoverableError, Worker } = requireOptional<typeof import('bullmq')>('bullmq');
  const log = o.log ?? (() => undefined);
  const logJob = o.logJobs === false ? () => undefined : log;
  const d = WORKER_DEFAULTS;
  const streamKey = resultsStreamKey(o.queue);
  const processor = async (job: Job<ClassifyJobData, ClassifyJobResult>): Promise<ClassifyJobResult> => {
    let data: ClassifyJobData;
    try {
      data = parseJobData(job.data);
    } catch (e) {
      // malformed data never gets better: no retries
      throw new UnrecoverableError((e as Error).message);
    }
    const t0 = Date.now();
    const attempt = job.attemptsStarted > 1 ? `, attempt ${job.attemptsStarted}` : '';
    const stalled = job.stalledCounter > 0 ? `, recovered from a stalled worker ${job.stalledCounter}x` : '';
    logJob(`job ${job.id} started (${plural(data.images.length, 'image')}${attempt}${stalled})`);
    const results = await classifyJobImages(o.classifier, o.fetcher, data, o.fetchConcurrency ?? d.fetchConcurrency);
    const failed = results.filter((r) => r.error !== undefined).length;
    try {
      const client = await worker.client;
      const entry = data.images.map((source, i) => ({ source, ...results[i] }));
      await client.xadd(streamKey, '*', { job: String(job.id), images: JSON.stringify(entry) }, { MAXLEN: RESULTS_STREAM_MAXLEN, approximate: true });
    } catch (e) {
      // the stream is a feed for others; the return value below is what `mnq submit` reads
      log(`job ${job.id}: could not append to the results stream ${streamKey} (${(e as Error).message})`);
    }
    logJob(`job ${job.id} done: ${plural(data.images.length, 'image')}, ${failed} failed, ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    return { v: JOB_FORMAT, model: o.modelId, results };
  };
  const worker: Worker<ClassifyJobData, ClassifyJobResult> = new Worker(o.queue, processor, {
    connection: o.connection,
    concurrency: o.concurrency ?? d.concurrency,
    lockDuration: o.lockDuration ?? d.lockDuration,
    stalledInterval: o.stalledInterval ?? d.stalledInterval,
    maxStalledCount: o.maxStalledCount ?? d.maxStalledCount,
    autorun: false,
  });
  // errors (a lost connection is retried; a job that Redis lost cannot be completed, and its submitter queues
  // it again): each distinct message once per 10 s, then one line when the connection is back
  const errors = errorLog(log);
  worker.on('error', errors.error);
  worker.on('ready', errors.ready);
  worker.on('failed', (job, e) => {
    if (job) log(`job ${job.id} failed (attempt ${job.attemptsMade}): ${e.message}`);
  });
  worker.on('stalled', (id) => log(`job ${id} was stalled (its worker died or lost its lock): queued again`));
  await worker.waitUntilReady();
  const running = worker.run();
  running.catch((e: Error) => log(`worker stopped: ${e.message}`));
  return {
    worker,
    async close(): Promise<void> {
      await worker.close();
      await running.catch(() => undefined);
    },
  };
}
