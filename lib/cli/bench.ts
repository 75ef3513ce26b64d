// `mnq bench <model.onnx> [--threads N] [--batch B] [--runs R] [--warmup W] [--vs-ort] [--json]`
// Latency / throughput / peak memory of mnq, and with --vs-ort of ONNX Runtime
// on the same file, each measured in its own child process (so peak RSS is
// that engine's alone), printed side by side with ratios.
// ORT is measured twice: with its default session options ('ort'; on x86 its
// graph optimizer keeps QDQ int8 graphs partly in float) and with
// session.qdqisint8allowed=1 ('ort-int8'; QDQ pairs fused into int8 kernels more often).
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { parseArgs, reportUsageError } from './args';
import { MAX_THREADS } from '../native';
import { checkInstalled } from '../optional-dependencies';

export const summary = 'measure latency, img/s and peak memory (optionally against ONNX Runtime)';

const USAGE = `usage: mnq bench <model.onnx> [options]
  --threads N   compute threads (mnq pool / ORT intra-op), default 1
  --batch B     images per run, default 1
  --runs R      timed runs after warm-up, default 50 (minimum 50)
  --warmup W    untimed warm-up runs, default 5
  --vs-ort      also measure ONNX Runtime (default session options, and with
                session.qdqisint8allowed=1) and print ratios
  --json        print JSON`;

type Engine = 'mnq' | 'ort' | 'ort-int8';
const ENGINES: readonly Engine[] = ['mnq', 'ort', 'ort-int8'];

export interface EngineResult {
  engine: Engine;
  isa?: string;
  threads: number;
  batch: number;
  runs: number;
  loadMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  imagesPerSecond: number;
  peakRssMB: number;
}

interface Options { model: string; threads: number; batch: number; runs: number; warmup: number; vsOrt: boolean; json: boolean; engine: Engine | '' }

const FLAGS = {
  threads: { type: 'string' }, batch: { type: 'string' }, runs: { type: 'string' }, warmup: { type: 'string' },
  'vs-ort': { type: 'boolean' }, json: { type: 'boolean' },
  // internal: the engine measured by a child process (see child())
  engine: { type: 'string', hidden: true },
} as const;

/** The options, or null for --help; throws a UsageError for bad usage. */
function parseOptions(argv: string[]): Options | null {
  const args = parseArgs(argv, FLAGS);
  if (args.help) return null;
  return {
    model: args.single('model file'),
    threads: args.int('threads', { min: 1, max: MAX_THREADS }) ?? 1,
    batch: args.int('batch', { min: 1 }) ?? 1,
    runs: args.int('runs', { min: 50 }) ?? 50,
    warmup: args.int('warmup', { min: 0 }) ?? 5,
    vsOrt: args.bool('vs-ort'),
    json: args.bool('json'),
    engine: args.choice('engine', ENGINES) ?? '',
  };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

/** Deterministic pseudo-random input in [-1, 1). */
function input(n: number): Float32Array {
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; x[i] = (s / 2 ** 32) * 2 - 1; }
  return x;
}

async function measure(o: Options): Promise<EngineResult> {
  const t0 = performance.now();
  let runOnce: () => Promise<unknown>;
  let release: () => Promise<void> | void;
  let isa: string | undefined;
  if (o.engine === 'mnq') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { load } = require('../model') as typeof import('../model');
    const m = await load(o.model, { threads: o.threads });
    const { c, h, w } = m.compiled.input;
    const x = input(o.batch * c * h * w);
    const shape = m.compiled.input.layout === 'nhwc' ? [o.batch, h, w, c] : [o.batch, c, h, w];
    runOnce = () => m.run(x, shape);
    release = () => m.dispose();
    isa = m.isa;
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createSession, ort } = require('../ort/session') as typeof import('../ort/session');
    const s = await createSession(o.model, 'int8-reference', { threads: o.threads, qdq: o.engine === 'ort-int8' ? 'integer' : 'x86-default' });
    const meta = (s as unknown as { inputMetadata?: { shape?: (number | string)[] }[] }).inputMetadata?.[0]?.shape ?? [];
    const dims = meta.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : 224));
    if (dims.length !== 3) dims.splice(0, dims.length, 3, 224, 224);
    const x = input(o.batch * dims[0] * dims[1] * dims[2]);
    const feeds = { [s.inputNames[0]]: new (ort().Tensor)('float32', x, [o.batch, ...dims]) };
    runOnce = () => s.run(feeds);
    release = () => s.release();
  }
  const loadMs = performance.now() - t0;
  for (let i = 0; i < o.warmup; i++) await runOnce();
  const times: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    const a = performance.now();
    await runOnce();
    times.push(performance.now() - a);
  }
  await release();
  const sorted = times.slice().sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return {
    engine: o.engine as Engine, isa, threads: o.threads, batch: o.batch, runs: o.runs, loadMs,
    p50Ms: quantile(sorted, 0.5), p90Ms: quantile(sorted, 0.9), p99Ms: quantile(sorted, 0.99), meanMs: mean,
    imagesPerSecond: (o.batch * 1000) / mean,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

/** Runs one engine in a child process (fresh peak RSS) and returns its result. */
function child(o: Options, engine: Engine): EngineResult {
  const cli = path.join(__dirname, '..', 'cli.js');
  const args = [cli, 'bench', o.model, '--threads', String(o.threads), '--batch', String(o.batch),
    '--runs', String(o.runs), '--warmup', String(o.warmup), '--engine', engine];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${engine} benchmark failed: ${(r.stderr || r.stdout || '').trim()}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as EngineResult;
}

export async function run(argv: string[]): Promise<number> {
  let o: Options | null;
  try {
    o = parseOptions(argv);
  } catch (e) {
    return reportUsageError('bench', e, USAGE);
  }
  if (!o) {
    console.log(USAGE);
    return 0;
  }
  if (o.vsOrt || o.engine.startsWith('ort')) checkInstalled(['onnxruntime-node']);
  if (o.engine) {
    console.log(JSON.stringify(await measure(o)));
    return 0;
  }
  const results = [child(o, 'mnq')];
  if (o.vsOrt) results.push(child(o, 'ort'), child(o, 'ort-int8'));
  const m = results[0];
  const versus = (r: EngineResult) => ({
    latencyP50: m.p50Ms / r.p50Ms, // < 1: mnq faster
    imagesPerSecond: m.imagesPerSecond / r.imagesPerSecond, // > 1: mnq faster
    peakRss: m.peakRssMB / r.peakRssMB,
  });
  const ratios = o.vsOrt ? versus(results[1]) : undefined;
  const ratiosInt8 = o.vsOrt ? versus(results[2]) : undefined;
  const machine = { cpu: os.cpus()[0]?.model ?? '?', cores: os.cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` };
  if (o.json) {
    console.log(JSON.stringify({ model: o.model, machine, results, ratios, ratiosInt8 }, null, 2));
    return 0;
  }
  console.log(`${path.basename(o.model)}  threads ${o.threads}  batch ${o.batch}  ${o.runs} runs after ${o.warmup} warm-up  (${machine.cpu}, ${machine.cores} cores)`);
  const row = (cells: string[]) => console.log(cells.map((c, i) => (i === 0 ? c.padEnd(17) : c.padStart(10))).join(' '));
  row(['engine', 'p50 ms', 'p90 ms', 'p99 ms', 'img/s', 'peak MB', 'load ms']);
  for (const x of results) {
    row([x.engine === 'mnq' ? `mnq (${x.isa})` : x.engine === 'ort' ? 'onnxruntime' : 'ort qdq-int8', x.p50Ms.toFixed(2), x.p90Ms.toFixed(2), x.p99Ms.toFixed(2),
      x.imagesPerSecond.toFixed(1), x.peakRssMB.toFixed(0), x.loadMs.toFixed(0)]);
  }
  const say = (label: string, r: ReturnType<typeof versus>) => console.log(
    `${label}: latency p50 ${r.latencyP50.toFixed(2)}x, throughput ${r.imagesPerSecond.toFixed(2)}x, peak RSS ${r.peakRss.toFixed(2)}x`);
  if (ratios) say('mnq / ORT', ratios);
  if (ratiosInt8) say('mnq / ORT (session.qdqisint8allowed=1)', ratiosInt8);
  return 0;
}
