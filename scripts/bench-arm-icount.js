#!/usr/bin/env node
// `npm run bench:arm-icount [-- --json] [-- --cpu C] [-- --model M] [-- --functions N]`: instructions
// retired per inference of whole int8 MobileNets on the AArch64 kernels, counted exactly under
// qemu-user (a deterministic efficiency proxy for the Raspberry Pi 4 / 5; not time).
//
//   1. builds the TCG plugins of ../shared/tools/arm-icount (icount.c: totals by instruction class;
//      tbprof.c: per translated block) with the host gcc, and cross-builds native/bench/bench_model
//      (build-arm64/, aarch64 toolchain, statically linked);
//   2. compiles each model with mnq's compiler (dist/, `npm run build:ts`) and writes its plan and one
//      image (data/coral/cat.png, resized, scaled to [-1, 1]) as a plan file (scripts/plan-file.js);
//   3. per CPU model (cortex-a72: the neon kernels; cortex-a76: neondot) and model, runs bench_model
//      with 1 and with 3 inferences (one process each) under qemu-aarch64 with both plugins; the
//      difference divided by 2 is one inference: Model::run on one image, every op of the plan
//      (input quantization, convs, adds, pooling, tables, the classifier, output copies);
//   4. prints per model and CPU the executor (the runtime's default, fused, or MNQ_EXECUTOR), the
//      instructions, the multiply-adds of the plan's convs and fully connected layers, instructions
//      per multiply-add, the instructions by kind of work (byKind: the per-block profile folded per
//      function, each kernel function to its kind) and by class (byClass: SIMD arithmetic, SDOT,
//      SIMD / general-purpose loads and stores).
//
// Models: MobileNetV2-1.0-224 = tf2_mobilenet_v2_1.0_224_ptq.qdq.onnx (Keras MobileNetV2 with Google's
// int8 per-channel PTQ), V3-Small = mobilenet_v3_small_1.0_224_quant.qdq.onnx (Google's QAT, uint8 with
// weight zero points), V3-Large = mobilenet_v3_large.random.opset17.onnx (torchvision's architecture,
// random weights) calibrated here by mnq's calibrator (minmax, 8 images of imagenet-sample/calib) and
// cached in build-arm64/icount/.
//
// byKind: 1x1 (GEMM over the pixels: pointwise convs), fc (the GEMM of fewer than 4 rows: the
// classifier and 1-pixel convs such as squeeze-and-excite), depthwise, stem (general convs: direct or
// im2col), add, mul, gap (global average pool), lut (tables), max_pool, quantize (the float input),
// runtime (the executor), libc (memcpy, memset, ...), other.
//
// Skips with a message (exit 0) where qemu-aarch64, the cross compiler, cmake, gcc, the plugins'
// sources or the shared models are missing. Options: --json (one JSON object per line on stdout),
// --cpu cortex-a72|cortex-a76 (repeatable), --model v2|v3s|v3l (repeatable), --functions N (also print
// the N costliest functions per run, to stderr).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { planFileBytes } = require('./plan-file');

const root = path.resolve(__dirname, '..');
const shared = path.resolve(process.env.MNQ_SHARED || path.join(root, '..', 'shared'));
const build = path.join(root, 'build-arm64');
const work = path.join(build, 'icount');
const toolchain = path.join(root, 'native', 'cmake', 'aarch64-toolchain.cmake');
const sysroot = '/usr/aarch64-linux-gnu';
const plugins = path.join(shared, 'tools', 'arm-icount');
const PASSES = [1, 3];

const CPUS = { 'cortex-a72': 'neon', 'cortex-a76': 'neondot' };
const MODELS = {
  v2: { name: 'MobileNetV2-1.0-224', file: 'tf2_mobilenet_v2_1.0_224_ptq.qdq.onnx' },
  v3s: { name: 'MobileNetV3-Small-1.0-224', file: 'mobilenet_v3_small_1.0_224_quant.qdq.onnx' },
  v3l: { name: 'MobileNetV3-Large-1.0-224', float: 'mobilenet_v3_large.random.opset17.onnx' },
};

// Function name (demangled) -> kind; the first rule that matches wins.
const KIND_RULES = [
  [/gemm_few_rows/, 'fc'],
  [/gemm/, '1x1'],
  [/depthwise|\bdw_/, 'depthwise'],
  [/direct|im2col/, 'stem'],
  [/global_avg_pool/, 'gap'],
  [/mul_channelwise|\bmul_|mnq::mul\(|mul16|mul4/, 'mul'],
  [/\badd_|mnq::add\(|add4/, 'add'],
  [/lut/, 'lut'],
  [/max_pool/, 'max_pool'],
  [/quantize/, 'quantize'],
  // _init: in the static binary the IFUNC call stubs (of memcpy, ...) follow it.
  [/^(__)?(mem|str)[a-z_]*$|^__GI_|^_?_?libc|^__aarch64_|^_int_|malloc|free$|^_init$/, 'libc'],
  [/^mnq::|^std::|ThreadPool|Model/, 'runtime'],
];
const KINDS = ['1x1', 'fc', 'depthwise', 'stem', 'add', 'mul', 'gap', 'lut', 'max_pool', 'quantize', 'runtime', 'libc', 'other'];

const args = process.argv.slice(2);
const json = args.includes('--json');
function listArg(name, all) {
  const v = [];
  for (let i = 0; i < args.length; i++) if (args[i] === name && args[i + 1]) v.push(args[++i]);
  for (const x of v) if (!all.includes(x)) die(`${name} ${x}: expected one of ${all.join(', ')}`);
  return v.length ? v : all;
}
const cpus = listArg('--cpu', Object.keys(CPUS));
const models = listArg('--model', Object.keys(MODELS));
const fi = args.indexOf('--functions');
const topFunctions = fi >= 0 ? Number(args[fi + 1]) : 0;

function log(msg) { console.error(`[bench:arm-icount] ${msg}`); }
function die(msg) { console.error(`[bench:arm-icount] FAIL: ${msg}`); process.exit(1); }
function skip(msg) { console.log(`[bench:arm-icount] SKIPPED: ${msg}`); process.exit(0); }
function which(cmd) { return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0; }
function run(cmd, cmdArgs, opts = {}) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: ['ignore', process.stderr, 'inherit'], ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) die(`${cmd} ${cmdArgs.join(' ')} failed`);
}

// ------------------------------------------------------------------ tools
const missing = ['qemu-aarch64', 'aarch64-linux-gnu-g++', 'aarch64-linux-gnu-nm', 'c++filt', 'cmake', 'gcc'].filter((t) => !which(t));
if (!fs.existsSync(sysroot)) missing.push(sysroot);
if (missing.length) skip(`missing ${missing.join(', ')} (apt-get install -y qemu-user g++-aarch64-linux-gnu cmake gcc)`);
for (const f of ['icount.c', 'tbprof.c'])
  if (!fs.existsSync(path.join(plugins, f))) skip(`no ${path.join(plugins, f)}: the arm-icount plugins come with the shared folder (MNQ_SHARED)`);
const modelDir = path.join(shared, 'models', 'onnx');
if (!fs.existsSync(path.join(root, 'dist', 'compiler', 'index.js'))) die('dist/ is not built: run npm run build:ts');

fs.mkdirSync(work, { recursive: true });
const plug = {};
for (const p of ['icount', 'tbprof']) {
  plug[p] = path.join(work, `lib${p}.so`);
  run('gcc', ['-shared', '-fPIC', '-O2', '-fvisibility=hidden', path.join(plugins, `${p}.c`), '-o', plug[p]]);
}
log('cross-building bench_model in build-arm64/');
run('cmake', ['-S', 'native', '-B', build, `-DCMAKE_TOOLCHAIN_FILE=${toolchain}`, '-DCMAKE_BUILD_TYPE=Release']);
run('nice', ['cmake', '--build', build, '-j', process.env.MNQ_ARM64_JOBS || '2', '--target', 'bench_model']);
const exe = path.join(build, 'bench_model');

// ------------------------------------------------------------ symbols
function symbols() {
  const nm = spawnSync('aarch64-linux-gnu-nm', ['-n', '--defined-only', exe], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (nm.status !== 0) die('aarch64-linux-gnu-nm failed');
  const syms = [];
  for (const l of nm.stdout.split('\n')) {
    const p = l.split(/\s+/);
    if (p.length >= 3 && 'tTwW'.includes(p[1])) syms.push({ addr: parseInt(p[0], 16), name: p.slice(2).join(' ') });
  }
  const dem = spawnSync('c++filt', { input: syms.map((s) => s.name).join('\n'), encoding: 'utf8', maxBuffer: 1 << 28 });
  const names = dem.stdout.split('\n');
  syms.forEach((s, i) => { s.name = names[i] || s.name; });
  return syms;
}
const syms = symbols();
const symAddrs = syms.map((s) => s.addr);
function symbolAt(addr) {
  let lo = 0, hi = symAddrs.length - 1, best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (symAddrs[mid] <= addr) { best = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return best >= 0 && addr < symAddrs[symAddrs.length - 1] + 0x10000 ? syms[best].name : '[outside the program]';
}
function kindOf(name) {
  const bare = name.replace(/\(.*$/, '').replace(/^.*::\(anonymous namespace\)::/, '');
  for (const [re, kind] of KIND_RULES) if (re.test(bare) || re.test(name)) return kind;
  return 'other';
}

// ------------------------------------------------------------- models
async function modelFile(key) {
  const m = MODELS[key];
  if (m.file) {
    const f = path.join(modelDir, m.file);
    if (!fs.existsSync(f)) skip(`no ${f} (shared models: MNQ_SHARED)`);
    return f;
  }
  const out = path.join(work, m.float.replace(/\.onnx$/, '.calibrated.qdq.onnx'));
  if (fs.existsSync(out)) return out;
  const src = path.join(modelDir, m.float);
  const calib = path.join(shared, 'data', 'imagenet-sample', 'calib');
  if (!fs.existsSync(src) || !fs.existsSync(calib)) skip(`no ${src} or ${calib} to calibrate V3-Large from`);
  log(`calibrating ${m.float} (minmax, 8 images of imagenet-sample/calib) -> ${path.relative(root, out)}`);
  const { calibrate } = require(path.join(root, 'dist', 'calibrate'));
  const r = await calibrate(src, { images: calib, limit: 8, method: 'minmax' });
  fs.writeFileSync(out, r.bytes);
  return out;
}

async function inputImage(input, layout) {
  const sharp = require('sharp');
  const { c, h, w } = input;
  const px = await sharp(path.join(shared, 'data', 'coral', 'cat.png')).removeAlpha().resize(w, h, { fit: 'fill' })
    .raw().toBuffer();
  const x = new Float32Array(c * h * w);
  for (let p = 0; p < h * w; p++)
    for (let ch = 0; ch < c; ch++) {
      const v = px[p * 3 + (ch % 3)] / 127.5 - 1;
      if (layout === 1) x[p * c + ch] = v; else x[ch * h * w + p] = v;
    }
  return x;
}

function planMacs(plan) {
  let macs = 0;
  for (const op of plan.ops) {
    if (op.type === 0) {
      const s = op.shape;
      macs += s.outH * s.outW * s.outC * s.kernelH * s.kernelW * (s.inC / op.groups);
    } else if (op.type === 5) {
      const x = plan.tensors[op.inputs[0]], y = plan.tensors[op.output];
      macs += x.h * x.w * x.c * y.c;
    }
  }
  return macs;
}

// --------------------------------------------------------------- runs
function qemuRun(cpu, isa, planFile, passes, tag) {
  const icountOut = path.join(work, `${tag}.${passes}.icount.txt`);
  const tbOut = path.join(work, `${tag}.${passes}.tb.txt`);
  const r = spawnSync('qemu-aarch64', ['-cpu', cpu, '-L', sysroot, '-plugin', plug.icount, '-plugin', plug.tbprof,
    exe, planFile, isa, String(passes)], {
    cwd: root, encoding: 'utf8', env: { ...process.env, ICOUNT_OUT: icountOut, TBPROF_OUT: tbOut, MNQ_ISA: '', MNQ_PROFILE: '' },
  });
  if (r.status !== 0) die(`bench_model under ${cpu} failed: ${r.stderr.trim() || r.signal}`);
  const m = /insns: (\d+) simd_dp: (\d+) \(dot: (\d+)\) simd_ls: (\d+) gp_ls: (\d+)/.exec(fs.readFileSync(icountOut, 'utf8'));
  if (!m) die(`unexpected icount output in ${icountOut}`);
  const [total, simd, dot, simdLs, gpLs] = m.slice(1).map(Number);
  const fns = new Map();
  for (const l of fs.readFileSync(tbOut, 'utf8').split('\n')) {
    if (!l) continue;
    const [va, n, k] = l.split(' ');
    const name = symbolAt(parseInt(va, 16));
    fns.set(name, (fns.get(name) || 0) + Number(n) * Number(k));
  }
  const hash = /outputs ([0-9a-f]+)/.exec(r.stdout);
  return {
    total, simd, dot, simdLs, gpLs, fns, hash: hash && hash[1], isa: (/isa (\S+)/.exec(r.stdout) || [])[1],
    executor: (/executor (\S+)/.exec(r.stdout) || [])[1],
  };
}

async function main() {
  const { compile } = require(path.join(root, 'dist', 'compiler'));
  const results = [];
  for (const key of models) {
    const file = await modelFile(key);
    const { plan, input } = compile(file);
    const planFile = path.join(work, `${key}.plan`);
    fs.writeFileSync(planFile, planFileBytes(plan, await inputImage(input, plan.inputLayout)));
    const macs = planMacs(plan);
    const hashes = new Set();
    for (const cpu of cpus) {
      const isa = CPUS[cpu];
      log(`${MODELS[key].name} on ${cpu} (${isa}): ${PASSES.join(' and ')} inferences under qemu`);
      const [a, b] = PASSES.map((n) => qemuRun(cpu, isa, planFile, n, `${key}.${cpu}`));
      if (a.isa !== isa || b.isa !== isa) die(`bench_model ran ${a.isa}, expected ${isa}`);
      hashes.add(b.hash);
      const per = (f) => (f(b) - f(a)) / (PASSES[1] - PASSES[0]);
      const instructions = per((r) => r.total);
      const byKind = Object.fromEntries(KINDS.map((k) => [k, 0]));
      const byFn = [];
      for (const name of new Set([...a.fns.keys(), ...b.fns.keys()])) {
        const v = per((r) => r.fns.get(name) || 0);
        byKind[kindOf(name)] += v;
        byFn.push([name, v]);
      }
      const folded = Object.values(byKind).reduce((s, v) => s + v, 0);
      if (Math.abs(folded - instructions) > 1e-3 * instructions)
        log(`warning: the per-block profile sums to ${folded}, the instruction count is ${instructions}`);
      const res = {
        model: MODELS[key].name, cpu, isa, executor: b.executor, instructions: Math.round(instructions), macs,
        perMac: Number((instructions / macs).toFixed(4)),
        byKind: Object.fromEntries(Object.entries(byKind).filter(([, v]) => Math.round(v) !== 0).map(([k, v]) => [k, Math.round(v)])),
        byClass: {
          simd: Math.round(per((r) => r.simd - r.dot)), sdot: Math.round(per((r) => r.dot)),
          simdLoadStore: Math.round(per((r) => r.simdLs)), scalarLoadStore: Math.round(per((r) => r.gpLs)),
        },
      };
      results.push(res);
      if (json) console.log(JSON.stringify(res));
      if (topFunctions > 0) {
        byFn.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
        for (const [name, v] of byFn.slice(0, topFunctions))
          console.error(`  ${(v / 1e6).toFixed(3).padStart(9)} M ${(100 * v / instructions).toFixed(2).padStart(6)}%  [${kindOf(name)}] ${name.slice(0, 140)}`);
      }
    }
    if (hashes.size > 1) die(`${MODELS[key].name}: the int8 outputs differ between the CPU models`);
  }
  if (!json) {
    const M = (v) => (v / 1e6).toFixed(1);
    console.log('| model | cpu | isa | instructions (M) | per MAC | ' + KINDS.join(' | ') + ' |');
    console.log('|---|---|---|---|---|' + KINDS.map(() => '---').join('|') + '|');
    for (const r of results)
      console.log(`| ${r.model} | ${r.cpu} | ${r.isa} | ${M(r.instructions)} | ${r.perMac.toFixed(3)} | ` +
        KINDS.map((k) => M(r.byKind[k] || 0)).join(' | ') + ' |');
  }
}

main().catch((e) => die(e.stack || String(e)));
