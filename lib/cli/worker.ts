// `mnq worker --redis URL --queue NAME --model M [--threads N] [--concurrency C] [--root DIR] [--allow-host H]...`
// Classifies the jobs `mnq submit` queues, until SIGINT / SIGTERM (then it finishes its running jobs).
import * as os from 'os';
import * as path from 'path';
import { Classifier } from '../classify';
import { PreprocessSpec } from '../preprocess-spec';
import { Labels } from '../labels';
import { ImageFetcher, parseHostRule } from '../queue/fetch-image';
import { checkQueueName } from '../queue/jobs';
import { redisConnection } from '../queue/redis';
import { startQueueWorker, WORKER_DEFAULTS } from '../queue/worker';
import { parseArgs, reportUsageError, UsageError } from './args';
import { loadClassifierModel, modelDefaults, parseClassifyFlags } from './classify';
import { resolveModelPath, sha256File } from './fetch';
import { MAX_THREADS } from '../native';

export const summary = 'classify the images of jobs on a Redis queue (BullMQ), for mnq submit';

const MAX_BYTES = 32 * 1024 * 1024;
const FETCH_TIMEOUT = 30000;

const HELP = `usage: mnq worker --redis redis://HOST:6379 --queue NAME --model <model.onnx|name> [options]

  --redis URL            the Redis server of the queue (redis:// or rediss://)
  --queue NAME           the queue to take jobs from (the one given to mnq submit)
  -m, --model M          an int8 ONNX model file, or the name of a model fetched with 'mnq fetch'
  -t, --threads N        inference threads (default: all ${cores()} cores; with several workers on a
                         machine, split the cores between them)
  -c, --concurrency C    jobs run at once (default ${WORKER_DEFAULTS.concurrency}: the next chunk is read and decoded while one runs)
  -b, --batch B          images per inference run within a job (default 32)

What a job may read (a job is data from whoever can write to the queue; anything else is an error of that image):
  --root DIR             local paths and file:// URLs are read only inside DIR (symbolic links resolved);
                         relative paths are relative to DIR. Without --root no local file is read
  --allow-host HOST      http(s):// URLs only from HOST or HOST:PORT (repeatable); redirects are followed
                         only to allowed hosts. Without it no URL is fetched
  --max-bytes N          most bytes read per image (default ${MAX_BYTES})
  --fetch-timeout MS     most milliseconds to download one image, redirects included (default ${FETCH_TIMEOUT})
  --max-pixels N         refuse images larger than N pixels (default 268402689)

Classification (as mnq classify: default from the model's metadata):
  --labels FILE          label file (one per line) or set ('imagenet-1001', 'imagenet-1000')
  --preprocess P         'tf', 'torch', 'raw', 'paddle' or a JSON spec

Crash recovery (BullMQ; every worker of the queue should use the same values):
  --lock-duration MS     a running job's lock lasts MS without renewal; a dead worker's job is taken over
                         after at most lock-duration + 2 x stalled-interval (default ${WORKER_DEFAULTS.lockDuration})
  --stalled-interval MS  how often this worker checks for jobs of dead workers (default ${WORKER_DEFAULTS.stalledInterval})
  --max-stalled N        times a job may outlive its worker before it fails (default ${WORKER_DEFAULTS.maxStalledCount})
  -q, --quiet            no line per job (errors and connection events only)

Runs until SIGINT or SIGTERM, then finishes the jobs it is running and exits. Details: docs/queue.md.`;

function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

const FLAGS = {
  redis: { type: 'string' }, queue: { type: 'string' }, model: { type: 'string', short: 'm' },
  threads: { type: 'string', short: 't' }, concurrency: { type: 'string', short: 'c' }, batch: { type: 'string', short: 'b' },
  root: { type: 'string' }, 'allow-host': { type: 'string', repeatable: true }, 'max-bytes': { type: 'string' },
  'fetch-timeout': { type: 'string' }, 'max-pixels': { type: 'string' }, labels: { type: 'string' },
  preprocess: { type: 'string' }, 'lock-duration': { type: 'string' }, 'stalled-interval': { type: 'string' },
  'max-stalled': { type: 'string' }, quiet: { type: 'boolean', short: 'q' },
} as const;

interface Options {
  redis: string; queue: string; model: string; threads: number; concurrency: number; batch: number;
  root?: string; allowHosts: string[]; maxBytes: number; fetchTimeout: number; maxPixels?: number;
  labels?: Labels; preprocess?: PreprocessSpec; lockDuration: number; stalledInterval: number; maxStalled: number;
  quiet: boolean;
}

/** The options, or null for --help; throws a UsageError for bad usage. */
function parseOptions(argv: string[]): Options | null {
  const args = parseArgs(argv, FLAGS);
  if (args.help) return null;
  if (args.positional.length) throw new UsageError(`unexpected arguments: ${args.positional.join(' ')}`);
  const redis = args.required('redis', '--redis is required (e.g. --redis redis://127.0.0.1:6379)');
  const queue = args.required('queue', '--queue is required');
  const model = args.required('model', '--model is required');
  try {
    redisConnection(redis);
    checkQueueName(queue);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const allowHosts = args.strings('allow-host').flatMap((h) => h.split(',')).map((h) => h.trim()).filter(Boolean);
  for (const h of allowHosts) {
    try {
      parseHostRule(h);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const o: Options = {
    redis, queue, model, allowHosts,
    threads: args.int('threads', { min: 1, max: MAX_THREADS }) ?? cores(),
    concurrency: args.int('concurrency', { min: 1 }) ?? WORKER_DEFAULTS.concurrency,
    batch: args.int('batch', { min: 1 }) ?? 32,
    root: args.string('root'),
    maxBytes: args.int('max-bytes', { min: 1 }) ?? MAX_BYTES,
    fetchTimeout: args.int('fetch-timeout', { min: 1 }) ?? FETCH_TIMEOUT,
    maxPixels: args.int('max-pixels', { min: 1 }),
    lockDuration: args.int('lock-duration', { min: 1000 }) ?? WORKER_DEFAULTS.lockDuration,
    stalledInterval: args.int('stalled-interval', { min: 500 }) ?? WORKER_DEFAULTS.stalledInterval,
    maxStalled: args.int('max-stalled', { min: 0 }) ?? WORKER_DEFAULTS.maxStalledCount,
    quiet: args.bool('quiet'),
  };
  return { ...o, ...parseClassifyFlags(args.string('preprocess'), args.string('labels')) };
}

export async function run(argv: string[]): Promise<number> {
  let o: Options | null;
  try {
    o = parseOptions(argv);
  } catch (e) {
    return reportUsageError('worker', e, HELP);
  }
  if (!o) {
    console.log(HELP);
    return 0;
  }
  const log = (m: string): void => console.error(`mnq worker: ${m}`);
  const fetcher = new ImageFetcher({ root: o.root, allowHosts: o.allowHosts, maxBytes: o.maxBytes, timeoutMs: o.fetchTimeout });
  if (!o.root && !o.allowHosts.length) log('note: neither --root nor --allow-host given: every image will be refused');

  const modelFile = resolveModelPath(o.model);
  const defaults = await modelDefaults(modelFile);
  const modelId = `${path.basename(modelFile)} sha256:${(await sha256File(modelFile)).slice(0, 12)}`;
  const model = await loadClassifierModel(modelFile, 'mnq', o.threads);
  const classifier = new Classifier(model, {
    batchSize: o.batch, limitInputPixels: o.maxPixels, modelThreads: o.threads,
    preprocess: o.preprocess ?? defaults.preprocess, labels: o.labels ?? defaults.labels,
  });
  const running = await startQueueWorker({
    connection: redisConnection(o.redis), queue: o.queue, classifier, modelId, fetcher, concurrency: o.concurrency,
    lockDuration: o.lockDuration, stalledInterval: o.stalledInterval, maxStalledCount: o.maxStalled, log, logJobs: !o.quiet,
  });
  log(`ready: queue '${o.queue}', model ${modelId}, ${o.threads} thread(s), ${o.concurrency} job(s) at once`);

  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      log(`${sig}: finishing the running jobs (again to exit now)`);
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await running.close();
  if (typeof model.dispose === 'function') model.dispose();
  log('stopped');
  return 0;
}
