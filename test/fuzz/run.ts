// The fuzz runner: feeds generated malformed models (generate.ts) to child processes (child.ts) that load and run
// them with mnq, with a hang timer per case. A child that dies is a crash, one that does not answer in time a
// hang; both are restarted and the run goes on. Every rejection must be an OnnxFormatError or an
// UnsupportedModelError made by mnq's checks (not wrapped around an internal error) that names its source.
//
//   npm run fuzz -- [--count 10000] [--seed 1] [--workers 2] [--timeout-ms 30000] [--models DIR]... [--save DIR] [--json]
//
// Exit status 1 if anything crashed, hung or was rejected some other way; the cases that did are written to
// --save DIR (default build-fuzz/failures/, ignored by git) as .onnx files with a .json beside each saying what was done to them.
import { ChildProcess, fork } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FuzzCase, SeedModel, generateCases } from './generate';
import { CaseOutcome } from './child';
import { folderSeeds, tinySeeds } from './seeds';

export interface FuzzOptions {
  seeds: SeedModel[];
  seed: number;
  count: number;
  workers?: number;
  timeoutMs?: number;
  /** where failing cases are written (none when absent) */
  saveDir?: string;
  /** the worker script (default child.ts); tests of the runner give their own */
  child?: string;
  progress?: (done: number, total: number) => void;
}

export interface FuzzFailure { id: number; seed: string; mutations: string[]; what: string }

export interface FuzzSummary {
  cases: number;
  seed: number;
  seeds: string[];
  loaded: number;
  rejected: Record<string, number>;
  crashes: FuzzFailure[];
  hangs: FuzzFailure[];
  /** rejections that are not mnq model errors naming their source, and runs of loaded models that failed */
  unexpected: FuzzFailure[];
  mutations: Record<string, number>;
  seconds: number;
  slowestMs: number;
}

const CHILD = path.join(__dirname, 'child.ts');
const TS_REGISTER = path.join(__dirname, '..', 'helpers', 'ts-register.js');

class Slot {
  private proc: ChildProcess | null = null;
  private ready: Promise<void> | null = null;

  constructor(private readonly child: string) {}

  private start(): Promise<void> {
    const p = fork(this.child, [], { execArgv: ['-r', TS_REGISTER, '--max-old-space-size=4096'], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    p.stderr!.on('data', () => {}); // keep the pipe drained (an abort's message is read from the exit)
    this.proc = p;
    this.ready = new Promise((resolve, reject) => {
      p.once('message', () => resolve());
      p.once('exit', (code, signal) => reject(new Error(`fuzz child exited before it was ready (${signal ?? code})`)));
    });
    return this.ready;
  }

  /** Runs one case: its outcome, or 'crash' / 'hang' with what happened. */
  async run(c: FuzzCase, timeoutMs: number): Promise<CaseOutcome | { result: 'crash' | 'hang'; what: string }> {
    if (!this.proc) await this.start();
    else await this.ready;
    const p = this.proc!;
    return new Promise((resolve) => {
      let finished = false;
      const finish = (v: CaseOutcome | { result: 'crash' | 'hang'; what: string }) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        p.off('message', onMessage);
        p.off('exit', onExit);
        resolve(v);
      };
      const onMessage = (m: CaseOutcome) => { if (m.id === c.id) finish(m); };
      const onExit = (code: number | null, signal: string | null) => {
        this.proc = null;
        finish({ result: 'crash', what: `child exited with ${signal ?? `status ${code}`}` });
      };
      const timer = setTimeout(() => {
        this.proc = null;
        p.off('exit', onExit);
        p.kill('SIGKILL');
        finish({ result: 'hang', what: `no answer in ${timeoutMs} ms` });
      }, timeoutMs);
      p.on('message', onMessage);
      p.once('exit', onExit);
      p.send({ id: c.id, bytes: c.bytes });
    });
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
    this.proc = null;
  }
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const t0 = Date.now();
  const summary: FuzzSummary = {
    cases: 0, seed: o.seed, seeds: o.seeds.map((s) => s.name), loaded: 0, rejected: {}, crashes: [], hangs: [], unexpected: [], mutations: {}, seconds: 0, slowestMs: 0,
  };
  const cases = generateCases(o.seeds, o.seed, o.count);
  const slots = Array.from({ length: o.workers ?? 2 }, () => new Slot(o.child ?? CHILD));
  const save = (c: FuzzCase, f: FuzzFailure) => {
    if (!o.saveDir) return;
    fs.mkdirSync(o.saveDir, { recursive: true });
    const base = path.join(o.saveDir, `seed${o.seed}-case${c.id}`);
    fs.writeFileSync(`${base}.onnx`, c.bytes);
    fs.writeFileSync(`${base}.json`, JSON.stringify(f, null, 2) + '\n');
  };
  const next = () => { const r = cases.next(); return r.done ? null : r.value; };
  await Promise.all(slots.map(async (slot) => {
    for (let c = next(); c; c = next()) {
      const out = await slot.run(c, o.timeoutMs ?? 30_000);
      summary.cases++;
      for (const m of c.mutations) { const k = m.slice(0, m.indexOf(':')); summary.mutations[k] = (summary.mutations[k] ?? 0) + 1; }
      const fail = (what: string): FuzzFailure => ({ id: c!.id, seed: c!.seed, mutations: c!.mutations, what });
      if ('what' in out) {
        const f = fail(out.what);
        (out.result === 'crash' ? summary.crashes : summary.hangs).push(f);
        save(c, f);
      } else {
        summary.slowestMs = Math.max(summary.slowestMs, out.ms);
        if (out.result === 'loaded') summary.loaded++;
        else {
          const key = out.result === 'run-failed' ? `run: ${out.errorName}` : out.errorName!;
          summary.rejected[key] = (summary.rejected[key] ?? 0) + 1;
          const named = /\bbytes\b/.test(out.message ?? '');
          if (out.result === 'run-failed' || !out.modelError || !named) {
            const f = fail(`${out.result === 'run-failed' ? 'run failed' : 'rejected'} with ${out.errorName}${out.modelError ? '' : ' (not an mnq model error)'}${named ? '' : ' (source not named)'}: ${out.message}`);
            summary.unexpected.push(f);
            save(c, f);
          }
        }
      }
      o.progress?.(summary.cases, o.count);
    }
    slot.stop();
  }));
  summary.seconds = Math.round((Date.now() - t0) / 100) / 10;
  summary.crashes.sort((a, b) => a.id - b.id);
  summary.hangs.sort((a, b) => a.id - b.id);
  summary.unexpected.sort((a, b) => a.id - b.id);
  return summary;
}

async function main(argv: string[]): Promise<number> {
  const opt = (name: string, dflt?: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : dflt; };
  const all = (name: string) => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1]] : []));
  const seeds = [...tinySeeds(), ...all('models').flatMap((d) => folderSeeds(d))];
  const count = Number(opt('count', '1000'));
  const seed = Number(opt('seed', '1'));
  const summary = await runFuzz({
    seeds, seed, count, workers: Number(opt('workers', '2')), timeoutMs: Number(opt('timeout-ms', '30000')),
    saveDir: opt('save', path.join('build-fuzz', 'failures')),
    progress: process.stderr.isTTY ? (d, t) => process.stderr.write(`\r${d}/${t}`) : undefined,
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (argv.includes('--json')) console.log(JSON.stringify(summary, null, 2));
  else {
    console.log(`fuzz: ${summary.cases} cases (seed ${seed}, ${seeds.length} seed models) in ${summary.seconds} s: ${summary.loaded} loaded, `
      + `${Object.entries(summary.rejected).map(([k, v]) => `${v} ${k}`).join(', ')}; slowest case ${summary.slowestMs} ms`);
    console.log(`mutations: ${Object.entries(summary.mutations).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    for (const [what, list] of [['CRASH', summary.crashes], ['HANG', summary.hangs], ['UNEXPECTED', summary.unexpected]] as const) {
      for (const f of list) console.log(`${what} case ${f.id} (${f.seed}; ${f.mutations.join('; ')}): ${f.what}`);
    }
    console.log(`${summary.crashes.length} crashes, ${summary.hangs.length} hangs, ${summary.unexpected.length} unexpected`);
  }
  return summary.crashes.length + summary.hangs.length + summary.unexpected.length ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => { console.error(e); process.exit(2); });
}
