// mnq worker + mnq submit on a real redis-server (started here on 127.0.0.1, an ephemeral port, its data in a
// temp dir; stopped at the end), with worker and submit as child processes (`node dist/cli.js ...`), on real
// images and a real int8 model from ../shared:
//   - bars 1 and 2 of the queue issue on a subset of the eval images (scripts/bench-queue.js runs all 393):
//     3 workers, chunks of 16, one worker SIGKILLed in the middle of a job and Redis restarted once during the
//     run: every image exactly once, in input order, equal to `mnq classify` on the same files; a corrupt
//     image and images the workers' rules refuse are per-image errors;
//   - Redis losing its data mid-run (restarted without persistence): submit queues the lost jobs again;
//   - submit SIGKILLed and run again: it resumes from its output file (a cut-off last line is dropped), jobs
//     done meanwhile are not run again, and a third run has nothing to do.
// Mid-job moments are made certain with an image HTTP server that holds chosen requests.
// Without /usr/bin/redis-server these tests are skipped, except under CI=true, where that is a failure.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Queue } from 'bullmq';
import { listImageFiles } from '../lib/cli/classify';
import { listSubmitImages } from '../lib/queue/inputs';
import { chunkJobId } from '../lib/queue/jobs';
import { HeldRequest, imageServer, ImageServer, MnqProcess, RedisServer, redisServerPath } from '../scripts/queue-harness';
import { sharedDir, sharedPath } from './helpers/shared';
import { checkDist, libSources } from './helpers/dist';

const REDIS_BIN = redisServerPath();
const EVAL = sharedPath('data', 'imagenet-sample', 'eval');
const MODEL = sharedPath('models', 'onnx', 'mobilenet_v3_small_1.0_224_quant.qdq.onnx');
const IN_CI = !!process.env.CI && process.env.CI !== 'false';

/** dist/ must hold the current lib/queue and CLI code: the workers run it. */
function checkQueueDist(): void {
  checkDist([...libSources('queue'), 'cli/worker.ts', 'cli/submit.ts', 'cli.ts'], 'the workers');
}

type Line = { image: string; predictions?: unknown[]; error?: string };
const readLines = (file: string): Line[] => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

let tmp: string;
let redis: RedisServer;
let images: string; // the workers' --root
let server: ImageServer;
let reference: Map<string, Line>; // mnq classify --json of the images, by file
const processes: MnqProcess[] = [];

function mnq(args: string[]): MnqProcess {
  const p = new MnqProcess(args);
  processes.push(p);
  return p;
}

/**
 * Workers running one job at a time. `takeOverFast`: a dead worker's job is taken over within seconds (lock 3 s,
 * checks every 1 s); else BullMQ's defaults, so that a busy machine cannot make a live worker look dead.
 */
async function startWorkers(queue: string, count: number, takeOverFast: boolean): Promise<MnqProcess[]> {
  const ws = Array.from({ length: count }, () => mnq([
    'worker', '--redis', redis.url, '--queue', queue, '--model', MODEL as string, '--threads', '1', '--concurrency', '1',
    '--root', images, '--allow-host', server.host, ...(takeOverFast ? ['--lock-duration', '3000', '--stalled-interval', '1000'] : []),
  ]));
  await Promise.all(ws.map((w) => w.waitForLine(/^mnq worker: ready/, 60000)));
  return ws;
}

/** Stops workers with SIGTERM; each finishes its jobs and exits 0. */
async function stopWorkers(ws: MnqProcess[]): Promise<void> {
  ws.forEach((w) => w.kill('SIGTERM'));
  for (const w of ws) expect(await w.wait(30000)).toBe(0);
}

/** The output lines checked against the inputs and mnq classify: each image once, in order, the same result. */
function checkOutput(out: string, list: string, urlFile: (name: string) => string | undefined): Line[] {
  const inputs = listSubmitImages(list);
  const lines = readLines(out);
  expect(lines.map((l) => l.image)).toEqual(inputs.map((i) => i.name));
  lines.forEach((l) => {
    const file = urlFile(l.image) ?? l.image;
    const ref = reference.get(file);
    if (!ref) return; // not one of the classified files: checked by the caller
    if (ref.error) {
      expect(l.predictions).toBeUndefined();
      expect(l.error).toMatch(new RegExp(`^${l.image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    } else {
      expect({ image: file, predictions: l.predictions }).toEqual(ref);
    }
  });
  return lines;
}

const haveShared = !!(EVAL && MODEL);
let suite: jest.Describe = describe;
if (!REDIS_BIN) {
  if (IN_CI) {
    test('redis-server is installed (the queue tests need it)', () => {
      throw new Error('redis-server not found at /usr/bin/redis-server: apt-get install redis-server (.ci/run installs it)');
    });
  } else {
    console.warn('[mnq tests] /usr/bin/redis-server not found (apt-get install redis-server, or set MNQ_REDIS_SERVER): skipping the queue tests');
  }
  suite = describe.skip;
} else if (!haveShared) {
  console.warn(`[mnq tests] shared data not found at ${sharedDir()} (set MNQ_SHARED): skipping the queue tests`);
  suite = describe.skip;
}

suite('mnq worker + mnq submit on redis-server', () => {
  beforeAll(async () => {
    checkQueueDist();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-queue-'));
    images = path.join(tmp, 'images');
    fs.mkdirSync(images);
    const all = fs.readdirSync(EVAL as string).filter((f) => /\.jpe?g$/i.test(f)).sort();
    // 96 eval images, spread over the classes, and one corrupt JPEG (cut off)
    for (let i = 0; i < 96; i++) fs.copyFileSync(path.join(EVAL as string, all[i * 4]), path.join(images, all[i * 4]));
    fs.writeFileSync(path.join(images, 'n00000000_corrupt.JPEG'), fs.readFileSync(path.join(EVAL as string, all[1])).subarray(0, 3000));
    fs.copyFileSync(path.join(EVAL as string, all[2]), path.join(tmp, 'outside.JPEG'));
    redis = await RedisServer.start(path.join(tmp, 'redis'));
    server = await imageServer(images);
    const classify = mnq(['classify', images, '--model', MODEL as string, '--json', '--threads', '2']);
    expect(await classify.wait(120000)).toBe(1); // the corrupt image fails
    reference = new Map(classify.stdout.map((l) => JSON.parse(l) as Line).map((l) => [l.image, l]));
    expect(reference.size).toBe(97);
    expect([...reference.values()].filter((l) => l.error).map((l) => l.image)).toEqual([path.join(images, 'n00000000_corrupt.JPEG')]);
  }, 180000);

  afterAll(async () => {
    processes.forEach((p) => p.kill('SIGKILL'));
    await Promise.all(processes.map((p) => p.wait(10000).catch(() => undefined)));
    await server?.close();
    await redis?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('3 workers, chunks of 16, one SIGKILLed mid-job, Redis restarted once: each image exactly once, equal to mnq classify', async () => {
    // the list: the 97 files (every 8th as a URL of the image server), plus one file outside the workers'
    // --root and one URL of a host they do not allow
    const files = listImageFiles(images);
    const entries = files.map((f, i) => (i % 8 === 3 ? server.url(path.basename(f)) : f));
    entries.splice(20, 0, path.join(tmp, 'outside.JPEG'));
    entries.splice(50, 0, 'http://127.0.0.2:9/n01440764_tench.JPEG');
    const list = path.join(tmp, 'list.txt');
    fs.writeFileSync(list, entries.join('\n') + '\n');
    const urlFile = (name: string): string | undefined => (name.startsWith(server.url('')) ? path.join(images, decodeURIComponent(name.slice(server.url('').length))) : undefined);

    // A: an image of chunk 1, whose worker is killed when it asks for it; B: an image of chunk 4, whose request
    // is held while Redis restarts
    const inputs = listSubmitImages(list);
    const urlIndex = (from: number): number => entries.findIndex((e, i) => i >= from && e.startsWith('http://127.0.0.1'));
    const a = urlIndex(16);
    const b = urlIndex(64);
    expect(Math.floor(a / 16)).toBe(1);
    expect(Math.floor(b / 16)).toBe(4);
    const jobOf = (i: number): string => chunkJobId(inputs.slice(i - (i % 16), i - (i % 16) + 16).map((x) => x.source), 5);
    const nameOf = (i: number): string => decodeURIComponent(entries[i].slice(server.url('').length));
    const heldA = server.hold(nameOf(a));
    const heldB = server.hold(nameOf(b));

    const workers = await startWorkers('bars', 3, true);
    const out = path.join(tmp, 'bars.jsonl');
    const submit = mnq(['submit', list, '--redis', redis.url, '--queue', 'bars', '--chunk', '16', '--in-flight', '6', '-o', out]);
    const logs = (): string => [submit, ...workers].map((p) => `--- mnq ${p.args[0]} (pid ${p.pid})\n${p.stderr.join('\n')}`).join('\n')
      + `\n--- errors in ${out}\n${fs.existsSync(out) ? readLines(out).filter((l) => l.error).map((l) => l.error).join('\n') : ''}`;

    try {
      // A is asked for: kill the worker running its job, in the middle of that job
      const requestA: HeldRequest = await heldA;
      let victim: MnqProcess | undefined;
      for (let t = 0; t < 200 && !victim; t++) {
        victim = workers.find((w) => w.stderr.some((l) => l.includes(`job ${jobOf(a)} started`)) && !w.stderr.some((l) => l.includes(`job ${jobOf(a)} done`)));
        if (!victim) await new Promise((r) => setTimeout(r, 50));
      }
      expect(victim).toBeDefined();
      (victim as MnqProcess).kill('SIGKILL');
      expect(await (victim as MnqProcess).wait(10000)).toBe('signal SIGKILL');
      requestA.drop();

      // B is asked for: restart Redis while its job runs, then answer
      const requestB = await heldB;
      const pid = redis.pid;
      await redis.restart();
      expect(redis.pid).not.toBe(pid);
      requestB.release();

      expect(await submit.wait(180000)).toBe(1); // 1: some images failed (the corrupt one and the refused ones)
      const lines = checkOutput(out, list, urlFile);
      expect(lines).toHaveLength(99);
      expect(lines.filter((l) => l.predictions).length).toBe(96);
      expect(lines[20].error).toMatch(/^\/.*outside\.JPEG: refused by --root: '.*outside\.JPEG' is outside /);
      expect(lines[50].error).toBe("http://127.0.0.2:9/n01440764_tench.JPEG: refused by --allow-host: host '127.0.0.2:9' is not allowed");
      expect(lines.find((l) => l.image.endsWith('n00000000_corrupt.JPEG'))?.error).toMatch(/n00000000_corrupt\.JPEG: (truncated image|corrupt or unreadable image)/);
      // A's job ran again on another worker; the restart happened during the run
      expect(server.requests.get(nameOf(a))).toBeGreaterThanOrEqual(2);
      expect(workers.filter((w) => w !== victim).some((w) => w.stderr.some((l) => l.includes(`job ${jobOf(a)} done`)))).toBe(true);
      expect(redis.restarts).toBe(1);
      // at least A's job was taken over (a false stall during the restart could add one: still each image once)
      const summary = /99 images, 96 classified, 3 failed, (\d+) job\(s\) taken over from a dead worker; results in /.exec(submit.stderr.join('\n'));
      expect(Number(summary?.[1])).toBeGreaterThanOrEqual(1);
      // the collected jobs are gone from Redis
      const q = new Queue('bars', { connection: { url: redis.url } });
      expect(await q.getJobCounts('wait', 'active', 'completed', 'failed', 'delayed')).toEqual({ wait: 0, active: 0, completed: 0, failed: 0, delayed: 0 });
      await q.close();
      await stopWorkers(workers.filter((w) => w !== victim));
    } catch (e) {
      await new Promise((r) => setTimeout(r, 1000)); // the last lines of the processes
      (e as Error).message += `\n${logs()}`;
      throw e;
    }
  }, 300000);

  test('Redis restarted without its data mid-run: submit queues the lost jobs again, each image once', async () => {
    const files = listImageFiles(images).filter((f) => !f.includes('corrupt')).slice(0, 40);
    const entries = files.map((f, i) => (i === 20 ? server.url(path.basename(f)) : f));
    const list = path.join(tmp, 'lost.txt');
    fs.writeFileSync(list, entries.join('\n') + '\n');
    const urlFile = (name: string): string | undefined => (name.startsWith(server.url('')) ? path.join(images, path.basename(name)) : undefined);
    const held = server.hold(path.basename(files[20]));
    const [worker] = await startWorkers('lost', 1, false);
    const out = path.join(tmp, 'lost.jsonl');
    const submit = mnq(['submit', list, '--redis', redis.url, '--queue', 'lost', '--chunk', '8', '-o', out]);
    const logs = (): string => [submit, worker].map((p) => `--- mnq ${p.args[0]}\n${p.stderr.join('\n')}`).join('\n');
    try {
      const request = await held;
      await redis.restart(false);
      request.release();
      expect(await submit.wait(120000)).toBe(0);
      expect(submit.stderr.join('\n')).toMatch(/job mnq-[0-9a-f]+ \(images 17-24\) was not in Redis any more; queued again/);
      const lines = checkOutput(out, list, urlFile);
      expect(lines).toHaveLength(40);
      expect(lines.every((l) => l.predictions)).toBe(true);
      // the worker could not complete the job Redis lost, and said so
      // (missing key: the job is gone; missing lock: submit has queued it again meanwhile)
      expect(worker.stderr.join('\n')).toMatch(/Redis: Missing (key|lock) for job mnq-[0-9a-f]+\. moveToFinished/);
      await stopWorkers([worker]);
    } catch (e) {
      await new Promise((r) => setTimeout(r, 1000)); // the last lines of the processes
      (e as Error).message += `\n${logs()}`;
      throw e;
    }
  }, 300000);

  test('submit killed and run again resumes from its output; a job done meanwhile does not run again', async () => {
    // 48 files in chunks of 4; the image at 25 (chunk 6) comes by URL, held until submit has been killed
    const files = listImageFiles(images).filter((f) => !f.includes('corrupt')).slice(0, 48);
    const entries = files.map((f, i) => (i === 25 ? server.url(path.basename(f)) : f));
    const list = path.join(tmp, 'resume.txt');
    fs.writeFileSync(list, entries.join('\n') + '\n');
    const urlFile = (name: string): string | undefined => (name.startsWith(server.url('')) ? path.join(images, path.basename(name)) : undefined);
    const held = server.hold(path.basename(files[25]));
    const [worker] = await startWorkers('resume', 1, false);
    const out = path.join(tmp, 'resume.jsonl');
    const args = ['submit', list, '--redis', redis.url, '--queue', 'resume', '--chunk', '4', '--in-flight', '3', '-o', out];
    const first = mnq(args);
    const logs = (): string => [first, worker].map((p) => `--- mnq ${p.args[0]}\n${p.stderr.join('\n')}`).join('\n');
    try {
      const request = await held;
      // chunks 0-5 are written; 6 waits for the held image, 7 and 8 are queued
      const written = (): number => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').length - 1 : 0);
      for (let t = 0; t < 400 && written() < 24; t++) await new Promise((r) => setTimeout(r, 50));
      expect(readLines(out)).toHaveLength(24);
      first.kill('SIGKILL');
      expect(await first.wait(10000)).toBe('signal SIGKILL');
      fs.appendFileSync(out, '{"image":"/cut/off'); // as if killed while writing a line
      request.release();
      // the worker finishes chunk 6 (and 7, 8 if submit queued them before it died) with nobody collecting them
      const jobs = Array.from({ length: 12 }, (_, c) => chunkJobId(listSubmitImages(list).slice(4 * c, 4 * c + 4).map((x) => x.source), 5));
      await worker.waitForLine(new RegExp(`job ${jobs[6]} done`), 60000);

      const second = mnq(args);
      expect(await second.wait(120000)).toBe(0);
      expect(second.stderr.join('\n')).toMatch(/resume\.jsonl already holds 24 of 48 results: resuming after them/);
      expect(second.stderr.join('\n')).toMatch(/48 images, 24 already in .*resume\.jsonl, 24 classified, 0 failed/);
      const lines = checkOutput(out, list, urlFile);
      expect(lines).toHaveLength(48);
      expect(lines.every((l) => l.predictions)).toBe(true);
      // every job ran once: those done while no submit ran were read, not run again
      for (const id of jobs) expect(worker.stderr.filter((l) => l.includes(`job ${id} started`))).toHaveLength(1);

      const before = fs.readFileSync(out, 'utf8');
      const third = mnq(args);
      expect(await third.wait(60000)).toBe(0);
      expect(third.stderr.join('\n')).toMatch(/already holds all 48 results: nothing to do/);
      expect(fs.readFileSync(out, 'utf8')).toBe(before);
      await stopWorkers([worker]);
    } catch (e) {
      await new Promise((r) => setTimeout(r, 1000)); // the last lines of the processes
      (e as Error).message += `\n${logs()}`;
      throw e;
    }
  }, 300000);
});
