// `mnq submit DIR|list.txt --redis URL --queue NAME [--chunk 64] -o results.jsonl`
// Queues the images in chunks for `mnq worker`s, shows progress, and writes one JSONL line per image in input
// order; run it again after a crash and it goes on from what the output file holds.
import { listSubmitImages } from '../queue/inputs';
import { checkQueueName, MAX_IMAGES_PER_JOB, MAX_TOP_K } from '../queue/jobs';
import { redisConnection } from '../queue/redis';
import { SUBMIT_DEFAULTS, submitImages, SubmitProgress } from '../queue/submit';
import { parseArgs, reportUsageError, UsageError } from './args';
import { duration } from './classify';

export const summary = 'queue images on Redis (BullMQ) for mnq workers; results to JSONL in input order, resumable';

const HELP = `usage: mnq submit <dir|list.txt> --redis redis://HOST:6379 --queue NAME -o results.jsonl [options]

  <dir|list.txt>       a directory (its image files, recursively, as mnq classify takes them) or a file with
                       one image per line: a local path (relative to the list's directory) or a file://,
                       http:// or https:// URL; blank lines and lines starting with '#' are skipped
  --redis URL          the Redis server of the queue (redis:// or rediss://)
  --queue NAME         the queue the workers take jobs from
  -o, --output FILE    JSON Lines, one per image in input order, as mnq classify --json writes them:
                       {"image", "predictions": [{label, index, probability}]} or {"image", "error"}.
                       If FILE exists, its lines are kept and the run goes on after them
  --chunk N            images per job (default ${SUBMIT_DEFAULTS.chunk})
  -k, --top K          classes per image (default ${SUBMIT_DEFAULTS.topK})
  --in-flight N        most chunks in Redis at once (default ${SUBMIT_DEFAULTS.inFlight})
  --attempts N         runs of a job that fails before its images are reported as errors (default ${SUBMIT_DEFAULTS.attempts})
  -q, --quiet          no progress display

Local paths are sent as absolute paths: mount the images at the same place on every worker machine (each
worker reads only inside its --root), or use URLs (each worker fetches only from its --allow-host hosts).
Run the same command again after a crash (same input, --chunk and --top): done jobs are not run again.
Exit code 1 when any image failed. Details: docs/queue.md.`;

const FLAGS = {
  redis: { type: 'string' }, queue: { type: 'string' }, output: { type: 'string', short: 'o' },
  chunk: { type: 'string' }, top: { type: 'string', short: 'k' }, 'in-flight': { type: 'string' },
  attempts: { type: 'string' }, quiet: { type: 'boolean', short: 'q' },
} as const;

interface Options {
  input: string; redis: string; queue: string; output: string; chunk: number; top: number; inFlight: number;
  attempts: number; quiet: boolean;
}

function parseOptions(argv: string[]): Options | null {
  const args = parseArgs(argv, FLAGS);
  if (args.help) return null;
  const input = args.single('directory or list file');
  const redis = args.required('redis', '--redis is required (e.g. --redis redis://127.0.0.1:6379)');
  const queue = args.required('queue', '--queue is required');
  const output = args.required('output', '-o/--output is required (the results file; it is also what a rerun resumes from)');
  try {
    redisConnection(redis);
    checkQueueName(queue);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const o: Options = {
    input, redis, queue, output,
    chunk: args.int('chunk', { min: 1 }) ?? SUBMIT_DEFAULTS.chunk,
    top: args.int('top', { min: 1 }) ?? SUBMIT_DEFAULTS.topK,
    inFlight: args.int('in-flight', { min: 1 }) ?? SUBMIT_DEFAULTS.inFlight,
    attempts: args.int('attempts', { min: 1 }) ?? SUBMIT_DEFAULTS.attempts,
    quiet: args.bool('quiet'),
  };
  if (o.chunk > MAX_IMAGES_PER_JOB) throw new UsageError(`--chunk must be at most ${MAX_IMAGES_PER_JOB}, got ${o.chunk}`);
  if (o.top > MAX_TOP_K) throw new UsageError(`--top must be at most ${MAX_TOP_K}, got ${o.top}`);
  return o;
}

function progressText(p: SubmitProgress): string {
  const rate = p.done / Math.max(1e-3, p.seconds);
  const eta = p.done ? duration((p.total - p.done) / rate) : '--:--';
  return `${p.done}/${p.total} done, ${p.failed} failed, ${rate.toFixed(1)} img/s, ETA ${eta}`;
}

/** Progress on stderr: a redrawn line on a terminal, else a line every 10 s. */
class ProgressDisplay {
  private last: number;
  private shown = false;
  constructor(private readonly tty: boolean, private readonly enabled: boolean) {
    this.last = tty ? 0 : Date.now();
  }
  update(p: SubmitProgress): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < (this.tty ? 100 : 10000) && p.done < p.total) return;
    this.last = now;
    if (this.tty) {
      const w = 24;
      const f = Math.round((w * p.done) / Math.max(1, p.total));
      process.stderr.write(`\r\x1b[K[${'#'.repeat(f)}${'.'.repeat(w - f)}] ${progressText(p)}`);
      this.shown = true;
    } else if (p.done < p.total) {
      console.error(`mnq submit: ${progressText(p)}`);
    }
  }
  /** clears the line before another message */
  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

export async function run(argv: string[]): Promise<number> {
  let o: Options | null;
  try {
    o = parseOptions(argv);
  } catch (e) {
    return reportUsageError('submit', e, HELP);
  }
  if (!o) {
    console.log(HELP);
    return 0;
  }
  const images = listSubmitImages(o.input);
  const display = new ProgressDisplay(!!process.stderr.isTTY, !o.quiet);
  const log = (m: string): void => {
    display.clear();
    console.error(`mnq submit: ${m}`);
  };
  const s = await submitImages({
    connection: redisConnection(o.redis), queue: o.queue, images, output: o.output, chunk: o.chunk, topK: o.top,
    inFlight: o.inFlight, attempts: o.attempts, log, onProgress: (p) => display.update(p),
  });
  display.clear();
  const parts = [`${images.length} images`];
  if (s.resumed) parts.push(`${s.resumed} already in ${o.output}`);
  parts.push(`${s.done - s.failed} classified`, `${s.failed} failed`);
  if (s.recovered) parts.push(`${s.recovered} job(s) taken over from a dead worker`);
  if (s.failedJobs) parts.push(`${s.failedJobs} job(s) failed after all attempts`);
  const rate = s.done && s.seconds ? `, ${(s.done / s.seconds).toFixed(1)} img/s` : '';
  console.error(`mnq submit: ${parts.join(', ')}; results in ${o.output} (${s.seconds.toFixed(1)} s${rate})`);
  if (s.models.length > 1) console.error(`mnq submit: warning: the results come from ${s.models.length} different models: ${s.models.join('; ')}`);
  return s.failed ? 1 : 0;
}
