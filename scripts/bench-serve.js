#!/usr/bin/env node
// The serving benchmark of issue #16: a real load generator (autocannon, in this process) against servers in
// child processes on 127.0.0.1 (ephemeral ports). Three phases, each bounded in time or count:
//
//   throughput  (bar 1) 64 connections POST the images (default: the 393 imagenet-sample/eval JPEGs, cycled)
//               to :classify of, in turn, `mnq serve` (dynamic batching), `mnq serve --max-batch 1`, and a plain
//               fastify + sharp + onnxruntime-node server written the way a user would (below); images/s of each
//               and their ratios; every mnq answer's top-1 checked against `mnq classify` on the same files.
//   overload    (bar 2) the unloaded p99 (one connection), then twice the sustainable rate (mnq's images/s from
//               the throughput phase, or --rate), spread over each second (openLoad): latency of the 429s, p99 of
//               the accepted requests against the unloaded p99, 5xx count, connection errors and timeouts.
//   soak        (bar 3) --requests mixed requests (valid JPEGs, truncated JPEGs, bodies over the limit, a wrong
//               Content-Type): server RSS (from its /metrics) sampled every second, growth after warm-up, any
//               status other than the documented one of each kind.
//
//   node scripts/bench-serve.js [--model M.onnx] [--images DIR] [--limit N] [--threads 2] [--connections 64]
//        [--duration 20] [--rounds 1] [--max-batch 32] [--max-delay-ms 5] [--max-queue 256]
//        [--overload-max-queue 8] [--overload-connections 128] [--rate R] [--requests 100000] [--soak-connections 16] [--soak-body-limit 1mb]
//        [--phases throughput,overload,soak]
//
// Progress goes to stderr, one JSON summary to stdout. Needs the built package (npm run build). A benchmark,
// not a test: run it on a quiet machine. `--baseline-server` is the child mode that runs the plain server.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const SHARED = process.env.MNQ_SHARED || path.join(ROOT, '..', 'shared');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const log = (...a) => console.error('[bench-serve]', ...a);

function parse(argv) {
  const o = {
    model: path.join(SHARED, 'models', 'onnx', 'mobilenet_v2_1.0_224_quant.qdq.onnx'),
    images: path.join(SHARED, 'data', 'imagenet-sample', 'eval'),
    limit: Infinity, threads: 2, connections: 64, duration: 20, rounds: 1, maxBatch: 32, maxDelayMs: 5, maxQueue: 256,
    overloadMaxQueue: 8, overloadConnections: 128, rate: 0, requests: 100000, soakConnections: 16, soakBodyLimit: '1mb',
    phases: ['throughput', 'overload', 'soak'], baselineServer: false,
  };
  const ints = { '--limit': 'limit', '--threads': 'threads', '--connections': 'connections', '--rounds': 'rounds', '--max-batch': 'maxBatch',
    '--max-queue': 'maxQueue', '--overload-max-queue': 'overloadMaxQueue', '--overload-connections': 'overloadConnections', '--requests': 'requests', '--soak-connections': 'soakConnections' };
  const nums = { '--duration': 'duration', '--max-delay-ms': 'maxDelayMs', '--rate': 'rate' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--baseline-server') o.baselineServer = true;
    else if (a === '--model' || a === '--images' || a === '--soak-body-limit') { o[a === '--soak-body-limit' ? 'soakBodyLimit' : a.slice(2)] = v; i++; }
    else if (a === '--phases') {
      o.phases = String(v).split(',');
      for (const p of o.phases) if (!['throughput', 'overload', 'soak'].includes(p)) throw new Error(`--phases: unknown phase '${p}' (throughput, overload, soak)`);
      i++;
    } else if (ints[a]) {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer, got ${v}`);
      o[ints[a]] = n;
      i++;
    } else if (nums[a]) {
      const n = Number(v);
      if (!(n >= 0) || !Number.isFinite(n)) throw new Error(`${a} needs a number >= 0, got ${v}`);
      o[nums[a]] = n;
      i++;
    } else throw new Error(`unknown option ${a} (see the comment at the top of scripts/bench-serve.js)`);
  }
  return o;
}

// ------------------------------------------------------------------------------------------ servers

/** Starts a server child process that prints "listening on URL"; resolves to { url, stop() → exit code }. */
function startChild(args, name) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const exited = new Promise((r) => child.on('exit', (code) => r(code)));
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m && !child.url) {
        child.url = m[1];
        let stopping = null;
        resolve({
          url: m[1], pid: child.pid, name,
          /** SIGTERM (the server drains), SIGKILL after 30 s; resolves to the exit code */
          stop: () => {
            stopping = stopping || (async () => {
              child.kill('SIGTERM');
              const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
              const code = await exited;
              clearTimeout(timer);
              return code;
            })();
            return stopping;
          },
        });
      }
    });
    exited.then((code) => { if (!child.url) reject(new Error(`${name} exited (${code}) before listening:\n${err || out}`)); });
  });
}

/** `mnq serve` with the benchmark's settings; `overrides` ({ '--max-batch': '1', ... }) replace or add flags. */
function mnqServer(o, overrides = {}) {
  const flags = {
    '--port': '0', '--threads': String(o.threads), '--max-batch': String(o.maxBatch), '--max-delay-ms': String(o.maxDelayMs),
    '--max-queue': String(o.maxQueue), ...overrides,
  };
  const name = `mnq serve ${Object.entries(overrides).map(([k, v]) => `${k} ${v}`).join(' ')}`.trim();
  return startChild([CLI, 'serve', '--model', `m=${o.model}`, ...Object.entries(flags).flat()], name);
}

function baselineServer(o) {
  return startChild([__filename, '--baseline-server', '--model', o.model, '--threads', String(o.threads)], 'fastify + sharp + onnxruntime-node');
}

/**
 * The plain server a user would write: fastify, sharp resizing each image to the model size, onnxruntime-node
 * running the same ONNX file on a batch of 1 per request, softmax and top-5 in JS. Same URL as mnq's :classify.
 */
async function runBaselineServer(o) {
  const fastify = require('fastify');
  const sharp = require('sharp');
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(o.model, { intraOpNumThreads: o.threads });
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  const size = 224;
  const labelFile = (n) => fs.readFileSync(path.join(ROOT, 'models', 'labels', `imagenet-${n}.txt`), 'utf8').split('\n');
  const labels = { 1000: labelFile(1000), 1001: labelFile(1001) };
  const app = fastify({ bodyLimit: 16 * 1024 * 1024 });
  app.addContentTypeParser(['image/jpeg', 'image/png', 'image/webp'], { parseAs: 'buffer' }, (req, body, done) => done(null, body));
  app.post('/v1/models/:target', async (req, reply) => {
    let pixels;
    try {
      pixels = await sharp(req.body).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer();
    } catch (e) {
      return reply.code(400).send({ error: e.message });
    }
    // the model is a TF-trained MobileNet: NCHW floats (p - 127.5) / 127.5
    const x = new Float32Array(3 * size * size);
    for (let i = 0; i < size * size; i++) {
      for (let c = 0; c < 3; c++) x[c * size * size + i] = (pixels[i * 3 + c] - 127.5) / 127.5;
    }
    const result = await session.run({ [input]: new ort.Tensor('float32', x, [1, 3, size, size]) });
    const logits = result[output].data;
    const max = Math.max(...logits);
    const exps = Array.from(logits, (v) => Math.exp(v - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    const top = exps.map((e, index) => ({ index, probability: e / sum })).sort((a, b) => b.probability - a.probability).slice(0, 5);
    const names = labels[logits.length] || [];
    return { predictions: top.map((t) => ({ label: names[t.index], ...t })) };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  console.log(`listening on http://127.0.0.1:${app.server.address().port}`);
  process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
}

// ------------------------------------------------------------------------------------------ load

function autocannon(opts, onResponse) {
  const ac = require('autocannon');
  return new Promise((resolve, reject) => {
    const instance = ac({ timeout: 10, ...opts }, (err, res) => (err ? reject(err) : resolve(res)));
    if (onResponse) instance.on('response', (client, status, bytes, ms) => onResponse(status, ms));
  });
}

/** Connections per autocannon instance in the overload phase (see openLoad). */
const OPEN_LOAD_GROUP = 4;

/**
 * `connections` clients offering `rate` requests/s in all, spread over each second. autocannon's own rate limit
 * (`overallRate`) lets every connection send its share at the start of each second, all connections at the
 * same moment: the load is one burst per second (measured: ~75% of the requests in the first 100 ms, none after
 * 500 ms), not a rate, and the server idles between bursts. So the connections run as autocannon instances of
 * OPEN_LOAD_GROUP connections, each with its share of the rate, started 1/K s apart: bursts of a few requests
 * every few ms. Resolves to the instances' results merged: { duration (s), errors, timeouts }.
 */
async function openLoad(url, connections, rate, duration, requests, onResponse) {
  const k = Math.max(1, Math.min(Math.floor(connections / OPEN_LOAD_GROUP), rate));
  const runs = [];
  for (let i = 0; i < k; i++) {
    const share = (total) => Math.floor(total / k) + (i < total % k ? 1 : 0);
    if (i > 0) await new Promise((r) => setTimeout(r, 1000 / k));
    runs.push(autocannon({ url, connections: share(connections), overallRate: share(rate), duration, requests }, onResponse));
  }
  const results = await Promise.all(runs);
  return {
    duration: Math.max(...results.map((r) => r.duration)),
    errors: results.reduce((n, r) => n + r.errors, 0),
    timeouts: results.reduce((n, r) => n + r.timeouts, 0),
  };
}

/** One :classify request object cycling over `bodies`; `check(i, status, body)` sees each answer. */
function classifyRequests(bodies, check) {
  let next = 0;
  return [{
    method: 'POST',
    path: '/v1/models/m:classify',
    setupRequest(req, context) {
      const i = next++ % bodies.length;
      context.i = i;
      return { ...req, headers: { 'content-type': bodies[i].type }, body: bodies[i].body };
    },
    onResponse(status, body, context) {
      if (check) check(context.i, status, body);
    },
  }];
}

/** Model runs and images computed so far by a running mnq server, from its /metrics. */
async function batchStats(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name) => Number((new RegExp(`^${name}\\{model="m"\\} (\\S+)$`, 'm').exec(text) || [])[1] || 0);
  return { modelRuns: value('mnq_batch_size_count'), images: value('mnq_batch_size_sum') };
}

const percentile = (a, p) => {
  if (!a.length) return null;
  const s = Float64Array.from(a).sort();
  return +s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)].toFixed(2);
};

async function referenceTop1(o, files) {
  log(`reference: mnq classify on ${files.length} images`);
  const out = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'classify', ...files, '--model', o.model, '--json', '--top', '1', '--threads', String(o.threads)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`mnq classify exited ${code}`))));
  });
  const top1 = new Map();
  for (const line of out.split('\n').filter(Boolean)) {
    const r = JSON.parse(line);
    top1.set(r.image, r.predictions[0].index);
  }
  return files.map((f) => top1.get(f));
}

// ------------------------------------------------------------------------------------------ phases

async function throughputPhase(o, files, bodies) {
  const reference = await referenceTop1(o, files);
  const kinds = [
    ['mnq', () => mnqServer(o)],
    ['mnq --max-batch 1', () => mnqServer(o, { '--max-batch': '1' })],
    ['fastify + sharp + onnxruntime-node', () => baselineServer(o)],
  ];
  const runs = {};
  for (let round = 0; round < o.rounds; round++) {
    for (const [name, start] of kinds) {
      const server = await start();
      const isMnq = name.startsWith('mnq');
      let ok = 0;
      let top1Same = 0;
      let top1Different = 0;
      const check = (i, status, body) => {
        if (status !== 200) return;
        ok++;
        const index = JSON.parse(body).predictions[0].index;
        if (index === reference[i]) top1Same++;
        else top1Different++;
      };
      // warm-up: every image once
      await autocannon({ url: server.url, connections: Math.min(o.connections, 8), amount: bodies.length, requests: classifyRequests(bodies) });
      log(`${name}: ${o.connections} connections, ${o.duration} s`);
      const before = isMnq ? await batchStats(server.url) : null;
      const r = await autocannon({ url: server.url, connections: o.connections, duration: o.duration, requests: classifyRequests(bodies, check) });
      const after = isMnq ? await batchStats(server.url) : null;
      const exit = await server.stop();
      const run = {
        imagesPerSecond: +(ok / r.duration).toFixed(1), ok, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts,
        latencyMs: { p50: r.latency.p50, p99: r.latency.p99 }, top1SameAsMnqClassify: top1Same, top1Different, exitCode: exit,
      };
      if (isMnq) {
        const runs = after.modelRuns - before.modelRuns;
        run.modelRuns = runs;
        run.meanBatchSize = runs ? +((after.images - before.images) / runs).toFixed(2) : null;
      }
      (runs[name] = runs[name] || []).push(run);
      log(`${name}: ${run.imagesPerSecond} images/s, top-1 differs on ${top1Different}, exit ${exit}`);
    }
  }
  const best = (name) => Math.max(...runs[name].map((r) => r.imagesPerSecond));
  const mnq = best('mnq');
  const batch1 = best('mnq --max-batch 1');
  const baseline = best('fastify + sharp + onnxruntime-node');
  const mnqRuns = [...runs.mnq, ...runs['mnq --max-batch 1']];
  return {
    images: files.length, connections: o.connections, durationS: o.duration, rounds: o.rounds, runs,
    imagesPerSecond: { mnq, mnqMaxBatch1: batch1, baseline },
    ratioVsMaxBatch1: +(mnq / batch1).toFixed(3), ratioVsBaseline: +(mnq / baseline).toFixed(3),
    bar: {
      vsMaxBatch1AtLeast1_3: mnq >= 1.3 * batch1,
      vsBaselineAtLeast1_5: mnq >= 1.5 * baseline,
      top1IdenticalToMnqClassify: mnqRuns.every((r) => r.top1Different === 0 && r.ok > 0),
    },
  };
}

async function overloadPhase(o, bodies, sustainable) {
  const server = await mnqServer(o, { '--max-queue': String(o.overloadMaxQueue) });
  try {
    await autocannon({ url: server.url, connections: 4, amount: Math.min(bodies.length, 200), requests: classifyRequests(bodies) });
    log(`unloaded: 1 connection, ${o.duration} s`);
    const unloaded = [];
    const u = await autocannon({ url: server.url, connections: 1, duration: o.duration, requests: classifyRequests(bodies) },
      (status, ms) => { if (status === 200) unloaded.push(ms); });
    const rate = Math.round(2 * sustainable);
    log(`overload: ${rate} requests/s (twice ${sustainable.toFixed(1)}) spread over each second, ${o.overloadConnections} connections, ${o.duration} s`);
    const accepted = [];
    const rejected = [];
    let server5xx = 0;
    let other = 0;
    const r = await openLoad(server.url, o.overloadConnections, rate, o.duration, classifyRequests(bodies),
      (status, ms) => {
        if (status === 200) accepted.push(ms);
        else if (status === 429) rejected.push(ms);
        else if (status >= 500) server5xx++;
        else other++;
      });
    const unloadedP99 = percentile(unloaded, 99);
    const acceptedP99 = percentile(accepted, 99);
    const exit = await server.stop();
    return {
      sustainableImagesPerSecond: +sustainable.toFixed(1), offeredRequestsPerSecond: rate, maxQueue: o.overloadMaxQueue, connections: o.overloadConnections,
      unloaded: { requests: unloaded.length, p50Ms: percentile(unloaded, 50), p99Ms: unloadedP99, errors: u.errors },
      accepted: { requests: accepted.length, perSecond: +(accepted.length / r.duration).toFixed(1), p50Ms: percentile(accepted, 50), p99Ms: acceptedP99 },
      rejected429: { requests: rejected.length, p50Ms: percentile(rejected, 50), p99Ms: percentile(rejected, 99), maxMs: rejected.length ? +Math.max(...rejected).toFixed(2) : null },
      status5xx: server5xx, otherStatus: other, connectionErrors: r.errors, timeouts: r.timeouts, exitCode: exit,
      bar: {
        rejectedWithin10ms: rejected.length > 0 && Math.max(...rejected) <= 10,
        acceptedP99AtMost3xUnloaded: acceptedP99 !== null && unloadedP99 !== null && acceptedP99 <= 3 * unloadedP99,
        zero5xx: server5xx === 0,
        zeroDroppedConnections: r.errors === 0 && r.timeouts === 0,
      },
    };
  } finally {
    await server.stop();
  }
}

async function soakPhase(o, bodies) {
  const limit = o.soakBodyLimit;
  const server = await mnqServer(o, { '--body-limit': limit });
  const limitBytes = require(path.join(ROOT, 'dist', 'cli', 'serve.js')).parseBytes(limit);
  // the request kinds, in a fixed cycle of 10: 5 valid, 2 truncated, 2 wrong Content-Type, 1 over the limit
  const valid = bodies;
  const truncated = bodies.slice(0, 20).map((b) => ({ type: 'image/jpeg', body: b.body.subarray(0, b.body.length >> 1) }));
  const oversized = { type: 'image/jpeg', body: Buffer.concat([bodies[0].body, Buffer.alloc(limitBytes + 1 - Math.min(limitBytes, bodies[0].body.length))]) };
  const wrongType = { type: 'text/plain', body: Buffer.from('this is not an image') };
  const cycle = ['valid', 'valid', 'truncated', 'valid', 'wrong-type', 'valid', 'truncated', 'valid', 'wrong-type', 'oversized'];
  const expected = { valid: 200, truncated: 400, 'wrong-type': 415, oversized: 413 };
  let next = 0;
  let done = 0;
  const statuses = {};
  const unexpected = {};
  const requests = [{
    method: 'POST',
    path: '/v1/models/m:classify',
    setupRequest(req, context) {
      const n = next++;
      const kind = cycle[n % cycle.length];
      const b = kind === 'valid' ? valid[n % valid.length] : kind === 'truncated' ? truncated[n % truncated.length] : kind === 'oversized' ? oversized : wrongType;
      context.kind = kind;
      return { ...req, headers: { 'content-type': b.type }, body: b.body };
    },
    onResponse(status, body, context) {
      done++;
      statuses[status] = (statuses[status] || 0) + 1;
      if (status !== expected[context.kind]) {
        const key = `${context.kind} -> ${status}`;
        unexpected[key] = (unexpected[key] || 0) + 1;
      }
    },
  }];
  const samples = [];
  const sample = async () => {
    try {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const m = /^process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
      if (m) samples.push({ t: +((Date.now() - t0) / 1000).toFixed(1), requests: done, rssMiB: +(Number(m[1]) / 2 ** 20).toFixed(1) });
    } catch { /* the server is busy: next second */ }
  };
  const t0 = Date.now();
  const timer = setInterval(sample, 1000);
  log(`soak: ${o.requests} requests, ${o.soakConnections} connections, body limit ${limit}`);
  let r;
  try {
    r = await autocannon({ url: server.url, connections: o.soakConnections, amount: o.requests, requests });
    await sample();
  } finally {
    clearInterval(timer);
  }
  const exit = await server.stop();
  const warm = samples.filter((s) => s.requests >= 0.2 * o.requests);
  const first = warm[0];
  const max = warm.reduce((m, s) => Math.max(m, s.rssMiB), 0);
  const growth = first ? (max - first.rssMiB) / first.rssMiB : null;
  return {
    requests: o.requests, seconds: r.duration, statuses, unexpected, connectionErrors: r.errors, timeouts: r.timeouts, exitCode: exit,
    rss: { afterWarmupMiB: first ? first.rssMiB : null, maxMiB: max || null, lastMiB: warm.length ? warm[warm.length - 1].rssMiB : null, growthAfterWarmup: growth === null ? null : +growth.toFixed(3), samples },
    bar: {
      rssFlatWithin10Percent: growth !== null && growth <= 0.1,
      onlyDocumented4xx: Object.keys(unexpected).length === 0 && r.errors === 0 && r.timeouts === 0,
    },
  };
}

async function main() {
  const o = parse(process.argv.slice(2));
  if (o.baselineServer) return runBaselineServer(o);
  if (!fs.existsSync(CLI)) throw new Error('build the package first: npm run build');
  for (const p of [o.model, o.images]) if (!fs.existsSync(p)) throw new Error(`not found: ${p} (set MNQ_SHARED or pass --model / --images)`);
  const files = fs.readdirSync(o.images).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort().slice(0, o.limit).map((f) => path.join(o.images, f));
  if (!files.length) throw new Error(`no images in ${o.images}`);
  const bodies = files.map((f) => ({ type: /\.png$/i.test(f) ? 'image/png' : /\.webp$/i.test(f) ? 'image/webp' : 'image/jpeg', body: fs.readFileSync(f) }));
  const summary = {
    date: new Date().toISOString(), model: path.basename(o.model), threads: o.threads, maxBatch: o.maxBatch, maxDelayMs: o.maxDelayMs,
    maxQueue: o.maxQueue, cpus: require('os').cpus().length, node: process.version,
  };
  let sustainable = o.rate;
  if (o.phases.includes('throughput')) {
    summary.throughput = await throughputPhase(o, files, bodies);
    if (!sustainable) sustainable = summary.throughput.imagesPerSecond.mnq;
  }
  if (o.phases.includes('overload')) {
    if (!sustainable) throw new Error('the overload phase needs the sustainable rate: run the throughput phase too, or give --rate');
    summary.overload = await overloadPhase(o, bodies, sustainable);
  }
  if (o.phases.includes('soak')) summary.soak = await soakPhase(o, bodies);
  console.log(JSON.stringify(summary, null, 2));
}

main().catch((e) => {
  console.error(`bench-serve: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
