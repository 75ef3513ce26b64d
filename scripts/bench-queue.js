#!/usr/bin/env node
// The queue issue's bars on real data, with a redis-server of its own on 127.0.0.1 (ephemeral port, temp dir):
//   bars 1-2: 3 workers classify the eval images submitted in chunks of 16; one worker is SIGKILLed in the
//             middle of a job and Redis is restarted once during the run; the output must hold every image
//             exactly once, in order, equal to `mnq classify` on the same files;
//   bar 3:    throughput of 2 workers x 1 thread (started beforehand) + `mnq submit` against
//             `mnq classify DIR --threads 2`, each as wall time of its command, interleaved runs, medians;
//             the bar is a ratio >= 0.85.
//
//   npm run build:ts && node scripts/bench-queue.js [--model M] [--images DIR] [--limit N] [--runs R]
//                                                   [--chunk N] [--bars-only | --throughput-only]
// Defaults: ../shared/models/onnx/mobilenet_v2_1.0_224_quant.qdq.onnx, ../shared/data/imagenet-sample/eval
// (393 images), 3 runs, chunks of 64 for bar 3. Needs redis-server (apt-get install redis-server).
// Timings mean something only on an otherwise idle machine.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { MnqProcess, RedisServer, imageServer, redisServerPath, sleep } = require('./queue-harness');

const ROOT = path.resolve(__dirname, '..');
const SHARED = path.resolve(process.env.MNQ_SHARED || path.join(ROOT, '..', 'shared'));

function parse(argv) {
  const o = {
    model: path.join(SHARED, 'models', 'onnx', 'mobilenet_v2_1.0_224_quant.qdq.onnx'),
    images: path.join(SHARED, 'data', 'imagenet-sample', 'eval'),
    limit: 0, runs: 3, chunk: 64, bars: true, throughput: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (argv[i + 1] === undefined) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') o.model = path.resolve(v());
    else if (a === '--images') o.images = path.resolve(v());
    else if (a === '--limit') o.limit = Number(v());
    else if (a === '--runs') o.runs = Number(v());
    else if (a === '--chunk') o.chunk = Number(v());
    else if (a === '--bars-only') o.throughput = false;
    else if (a === '--throughput-only') o.bars = false;
    else throw new Error(`unknown option ${a}`);
  }
  for (const k of ['limit', 'runs', 'chunk']) if (!Number.isInteger(o[k]) || o[k] < (k === 'limit' ? 0 : 1)) throw new Error(`--${k} must be an integer`);
  return o;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const readLines = (file) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

async function expectExit(p, code, ms = 600000) {
  const got = await p.wait(ms);
  if (got !== code) throw new Error(`'mnq ${p.args[0]}' exited with ${got}, expected ${code}; stderr:\n${p.stderr.join('\n')}`);
}

function startWorkers(redis, queue, count, o, extra = []) {
  const ws = Array.from({ length: count }, () => new MnqProcess([
    'worker', '--redis', redis.url, '--queue', queue, '--model', o.model, '--root', o.images, ...extra,
  ]));
  return Promise.all(ws.map((w) => w.waitForLine(/^mnq worker: ready/, 120000))).then(() => ws);
}

async function stopWorkers(ws) {
  ws.forEach((w) => w.kill('SIGTERM'));
  await Promise.all(ws.map((w) => w.wait(60000)));
}

/** `mnq classify` of the files as JSON lines by image, and its wall time. */
async function classify(files, o, threads) {
  const t0 = process.hrtime.bigint();
  const p = new MnqProcess(['classify', ...(o.limit ? files : [o.images]), '--model', o.model, '--json', '--threads', String(threads)]);
  const code = await p.wait(1800000);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0 && code !== 1) throw new Error(`mnq classify exited with ${code}:\n${p.stderr.join('\n')}`);
  return { seconds, byImage: new Map(p.stdout.map((l) => JSON.parse(l)).map((l) => [l.image, l])) };
}

async function bars(o, files, tmp, redis, reference) {
  console.log(`\n== bars 1-2: 3 workers, ${files.length} images in chunks of 16, a worker SIGKILLed mid-job, Redis restarted once`);
  const server = await imageServer(o.images);
  // every 10th image comes by URL; two of those requests are held: A (kill the worker asking) and B (restart Redis)
  const entries = files.map((f, i) => (i % 10 === 5 ? server.url(path.basename(f)) : f));
  const urls = entries.map((e, i) => [e, i]).filter(([e]) => e.startsWith('http://'));
  const [a, b] = [urls[Math.min(1, urls.length - 1)][1], urls[Math.floor(urls.length / 2)][1]];
  const list = path.join(tmp, 'bars.txt');
  fs.writeFileSync(list, entries.join('\n') + '\n');
  const heldA = server.hold(path.basename(files[a]));
  const heldB = a === b ? null : server.hold(path.basename(files[b]));
  const ws = await startWorkers(redis, 'bars', 3, o, ['--threads', '1', '--concurrency', '1', '--allow-host', server.host,
    '--lock-duration', '5000', '--stalled-interval', '2000']);
  const out = path.join(tmp, 'bars.jsonl');
  const submit = new MnqProcess(['submit', list, '--redis', redis.url, '--queue', 'bars', '--chunk', '16', '-o', out]);
  const t0 = Date.now();
  const requestA = await heldA;
  // the worker running A's job (started, not done) is killed while that job waits for A
  const { chunkJobId } = require(path.join(ROOT, 'dist', 'queue', 'jobs.js'));
  const { listSubmitImages } = require(path.join(ROOT, 'dist', 'queue', 'inputs.js'));
  const first = a - (a % 16);
  const idA = chunkJobId(listSubmitImages(list).slice(first, first + 16).map((x) => x.source), 5);
  let victim;
  for (let t = 0; t < 200 && !victim; t++) {
    victim = ws.find((w) => w.stderr.some((l) => l.includes(`job ${idA} started`)) && !w.stderr.some((l) => l.includes(`job ${idA} done`)));
    if (!victim) await sleep(50);
  }
  if (!victim) throw new Error(`no worker reports running job ${idA}`);
  victim.kill('SIGKILL');
  await victim.wait(10000);
  requestA.drop();
  console.log(`worker ${victim.pid} SIGKILLed at ${((Date.now() - t0) / 1000).toFixed(1)} s while its job waited for image ${a + 1}`);
  if (heldB) {
    const requestB = await heldB;
    await redis.restart();
    requestB.release();
    console.log(`Redis restarted at ${((Date.now() - t0) / 1000).toFixed(1)} s while a job waited for image ${b + 1}`);
  }
  await expectExit(submit, [...reference.values()].some((l) => l.error) ? 1 : 0);
  console.log(submit.stderr.filter((l) => !l.includes(' done, ')).join('\n'));
  const lines = readLines(out);
  const problems = [];
  if (lines.length !== entries.length) problems.push(`${lines.length} lines for ${entries.length} images`);
  lines.forEach((l, i) => {
    if (l.image !== entries[i]) problems.push(`line ${i + 1} is ${l.image}, expected ${entries[i]}`);
    const ref = reference.get(files[i]);
    if (!ref) problems.push(`no mnq classify result for ${files[i]}`);
    else if (ref.error ? !l.error : JSON.stringify(l.predictions) !== JSON.stringify(ref.predictions)) problems.push(`line ${i + 1} (${l.image}) differs from mnq classify`);
  });
  if ((server.requests.get(path.basename(files[a])) || 0) < 2) problems.push(`image ${a + 1} was not asked for again after its worker died`);
  await stopWorkers(ws.filter((w) => w !== victim));
  await server.close();
  if (problems.length) throw new Error(`bars 1-2 not met:\n  ${problems.slice(0, 20).join('\n  ')}`);
  console.log(`bars 1-2 met: ${lines.length} lines, each image once, in input order, equal to mnq classify`);
}

async function throughput(o, files, tmp, redis) {
  console.log(`\n== bar 3: 2 workers x 1 thread + mnq submit (chunks of ${o.chunk}) vs mnq classify --threads 2, ${files.length} images, ${o.runs} run(s) each, interleaved`);
  const ws = await startWorkers(redis, 'speed', 2, o, ['--threads', '1', '--quiet']);
  const input = o.limit ? path.join(tmp, 'speed.txt') : o.images;
  if (o.limit) fs.writeFileSync(input, files.join('\n') + '\n');
  const direct = [];
  const queued = [];
  for (let r = 0; r < o.runs; r++) {
    direct.push((await classify(files, o, 2)).seconds);
    const out = path.join(tmp, `speed-${r}.jsonl`);
    const t0 = process.hrtime.bigint();
    const submit = new MnqProcess(['submit', input, '--redis', redis.url, '--queue', 'speed', '--chunk', String(o.chunk), '-o', out, '--quiet']);
    const code = await submit.wait(1800000);
    if (code !== 0 && code !== 1) throw new Error(`mnq submit exited with ${code}:\n${submit.stderr.join('\n')}`);
    queued.push(Number(process.hrtime.bigint() - t0) / 1e9);
    fs.rmSync(out);
    console.log(`run ${r + 1}: classify ${direct[r].toFixed(2)} s, queue ${queued[r].toFixed(2)} s`);
  }
  await stopWorkers(ws);
  const ratio = median(direct) / median(queued);
  const n = files.length;
  console.log(`mnq classify --threads 2: ${median(direct).toFixed(2)} s (${(n / median(direct)).toFixed(1)} img/s); ` +
    `2 workers x 1 thread: ${median(queued).toFixed(2)} s (${(n / median(queued)).toFixed(1)} img/s); ` +
    `queue / classify throughput ${ratio.toFixed(2)}x (bar >= 0.85x) on ${os.cpus().length} cores, ${os.cpus()[0].model}`);
  return ratio;
}

async function main() {
  const o = parse(process.argv.slice(2));
  const bin = redisServerPath();
  if (!bin) throw new Error('redis-server not found: apt-get install redis-server (or set MNQ_REDIS_SERVER)');
  for (const f of [o.model, o.images]) if (!fs.existsSync(f)) throw new Error(`${f} not found (set MNQ_SHARED, --model, --images)`);
  const { listImageFiles } = require(path.join(ROOT, 'dist', 'cli', 'classify.js'));
  let files = listImageFiles(o.images);
  if (o.limit) files = files.slice(0, o.limit);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-bench-queue-'));
  let redis;
  try {
    redis = await RedisServer.start(path.join(tmp, 'redis'), bin);
    console.log(`redis-server ${redis.url} (data in ${redis.dir}); model ${path.basename(o.model)}; ${files.length} images`);
    if (o.bars) {
      const reference = (await classify(files, o, 2)).byImage;
      await bars(o, files, tmp, redis, reference);
    }
    if (o.throughput) await throughput(o, files, tmp, redis);
  } finally {
    if (redis) await redis.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench-queue: ${e.message}`);
  process.exit(1);
});
