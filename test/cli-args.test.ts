// The flag parser of the mnq commands (lib/cli/args.ts), and the commands' usage errors through it:
// messages name the flag, unknown options list the valid ones, exit code 2; --help exits 0.
// Needs no models: every case stops before a model is read.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { parseArgs, reportUsageError, UsageError } from '../lib/cli/args';
import { errorLine } from '../lib/cli';
import { checkDist } from './helpers/dist';
import { REPO_ROOT } from './helpers/shared';

const FLAGS = {
  model: { type: 'string', short: 'm' },
  top: { type: 'string', short: 'k' },
  json: { type: 'boolean' },
  'vs-ort': { type: 'boolean' },
  engine: { type: 'string', hidden: true },
} as const;

/** The UsageError message thrown by `fn`. */
function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('no error thrown');
}

describe('parseArgs', () => {
  test('positionals, valued flags (space, =, short alias), booleans, in any order', () => {
    const a = parseArgs(['a.jpg', '--model', 'm.onnx', 'b.jpg', '--json', '-k', '3', '--vs-ort'], FLAGS);
    expect(a.help).toBe(false);
    expect(a.positional).toEqual(['a.jpg', 'b.jpg']);
    expect(a.string('model')).toBe('m.onnx');
    expect(a.int('top')).toBe(3);
    expect(a.bool('json')).toBe(true);
    expect(a.bool('vs-ort')).toBe(true);
    expect(a.has('engine')).toBe(false);
    expect(a.string('engine')).toBeUndefined();

    const b = parseArgs(['--model=x=y.onnx', '--top=5', '-'], FLAGS);
    expect(b.string('model')).toBe('x=y.onnx'); // only the first '=' separates
    expect(b.int('top')).toBe(5);
    expect(b.positional).toEqual(['-']); // '-' (stdin by convention) is a positional
    expect(parseArgs(['-m=a.onnx'], FLAGS).string('model')).toBe('a.onnx');
    expect(parseArgs(['--model='], FLAGS).string('model')).toBe('');
  });

  test('negative numbers are values; `--` ends the options', () => {
    expect(usageMessage(() => parseArgs(['--top', '-1'], FLAGS).int('top', { min: 1 }))).toBe("--top must be a positive integer, got '-1'");
    expect(parseArgs(['--top', '-.5'], FLAGS).number('top')).toBe(-0.5);
    const a = parseArgs(['--json', '--', '--model', '-h', 'x'], FLAGS);
    expect(a.positional).toEqual(['--model', '-h', 'x']);
    expect(a.help).toBe(false);
    expect(a.has('model')).toBe(false);
  });

  test('hidden flags are accepted but not listed', () => {
    expect(parseArgs(['--engine', 'ort'], FLAGS).string('engine')).toBe('ort');
    expect(usageMessage(() => parseArgs(['--frobnicate'], FLAGS))).toBe(
      "unknown option '--frobnicate' (options: -m/--model, -k/--top, --json, --vs-ort, -h/--help)",
    );
  });

  test.each([
    [['--frobnicate', 'x'], "unknown option '--frobnicate' (options: -m/--model, -k/--top, --json, --vs-ort, -h/--help)"],
    [['-x'], "unknown option '-x' (options: -m/--model, -k/--top, --json, --vs-ort, -h/--help)"],
    [['-mk'], "unknown option '-mk' (options: -m/--model, -k/--top, --json, --vs-ort, -h/--help)"],
    [['--constructor'], "unknown option '--constructor' (options: -m/--model, -k/--top, --json, --vs-ort, -h/--help)"],
    [['--json=yes'], '--json takes no value'],
    [['a.jpg', '--model'], '--model needs a value'],
    [['-m'], '-m needs a value'],
    [['--model', '--json'], "--model needs a value, got option '--json' (write --model=VALUE for a value that starts with '-')"],
    [['--top', '1', '-k', '2'], '-k/--top given twice'],
  ])('%j: %s', (argv, message) => {
    expect(usageMessage(() => parseArgs(argv as string[], FLAGS))).toBe(message);
  });

  test('a boolean given twice is fine', () => {
    expect(parseArgs(['--json', '--json'], FLAGS).bool('json')).toBe(true);
  });

  test('a repeatable flag collects its values in order; others keep one', () => {
    const specs = { exclude: { type: 'string', repeatable: true }, model: { type: 'string' } } as const;
    const a = parseArgs(['--exclude', 'a', 'x', '--exclude=b,c', '--model', 'm'], specs);
    expect(a.strings('exclude')).toEqual(['a', 'b,c']);
    expect(a.string('exclude')).toBe('a');
    expect(a.strings('model')).toEqual(['m']);
    expect(parseArgs([], specs).strings('exclude')).toEqual([]);
    expect(a.positional).toEqual(['x']);
  });

  test('-h / --help anywhere (before --) wins over other errors', () => {
    for (const argv of [['--help'], ['x', '-h'], ['--frobnicate', '--help'], ['--model', '--json', '-h']]) {
      const a = parseArgs(argv, FLAGS);
      expect(a.help).toBe(true);
      expect(a.positional).toEqual([]);
    }
    expect(parseArgs(['--model=--help'], FLAGS).help).toBe(false);
  });

  test('numbers: integer and range checks name the flag and echo the value', () => {
    const a = (v: string) => parseArgs(['--top', v], FLAGS);
    expect(a('0x10').int('top')).toBe(16);
    expect(a('1e3').int('top', { min: 1 })).toBe(1000);
    expect(a('0').int('top', { min: 0 })).toBe(0);
    expect(a('50').int('top', { min: 50 })).toBe(50);
    expect(a('0.75').number('top', { above: 0 })).toBe(0.75);
    expect(usageMessage(() => a('1.5').int('top'))).toBe("--top must be an integer, got '1.5'");
    expect(usageMessage(() => a('').int('top'))).toBe("--top must be an integer, got ''");
    expect(usageMessage(() => a(' ').number('top'))).toBe("--top must be a number, got ' '");
    expect(usageMessage(() => a('five').int('top', { min: 1 }))).toBe("--top must be a positive integer, got 'five'");
    expect(usageMessage(() => a('-1').int('top', { min: 0 }))).toBe("--top must be a non-negative integer, got '-1'");
    expect(usageMessage(() => a('5').int('top', { min: 50 }))).toBe("--top must be an integer >= 50, got '5'");
    expect(usageMessage(() => a('Infinity').number('top'))).toBe("--top must be a number, got 'Infinity'");
    expect(usageMessage(() => a('wide').number('top'))).toBe("--top must be a number, got 'wide'");
    expect(usageMessage(() => a('0').number('top', { above: 0 }))).toBe("--top must be a number > 0, got '0'");
    expect(usageMessage(() => a('-2').number('top', { min: -1 }))).toBe("--top must be a number >= -1, got '-2'");
    expect(parseArgs([], FLAGS).int('top', { min: 1 })).toBeUndefined();
  });

  test('choices', () => {
    const a = (v: string) => parseArgs(['--engine', v], FLAGS);
    expect(a('ort').choice('engine', ['mnq', 'ort'])).toBe('ort');
    expect(usageMessage(() => a('tvm').choice('engine', ['mnq', 'ort']))).toBe("--engine must be 'mnq' or 'ort', got 'tvm'");
    expect(usageMessage(() => a('x').choice('engine', ['mnq', 'ort', 'ort-int8']))).toBe("--engine must be 'mnq', 'ort' or 'ort-int8', got 'x'");
    expect(parseArgs([], FLAGS).choice('engine', ['mnq'])).toBeUndefined();
  });

  test('single positional', () => {
    expect(parseArgs(['m.onnx', '--json'], FLAGS).single('model file')).toBe('m.onnx');
    expect(usageMessage(() => parseArgs(['--json'], FLAGS).single('model file'))).toBe('missing model file');
    expect(usageMessage(() => parseArgs(['a', 'b', 'c'], FLAGS).single('model file'))).toBe('unexpected arguments: b c');
  });
});

describe('reportUsageError', () => {
  let err: string[];
  beforeEach(() => {
    err = [];
    jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  });
  afterEach(() => jest.restoreAllMocks());

  test('prints the command, the message and the usage (or a pointer to --help); returns 2', () => {
    expect(reportUsageError('info', new UsageError('missing model file'))).toBe(2);
    expect(err).toEqual(['mnq info: missing model file', "run 'mnq info --help' for usage"]);
    err.length = 0;
    expect(reportUsageError('bench', new UsageError('bad'), 'usage: mnq bench')).toBe(2);
    expect(err).toEqual(['mnq bench: bad', '\nusage: mnq bench']);
  });

  test('rethrows other errors', () => {
    const e = new Error('disk full');
    expect(() => reportUsageError('info', e)).toThrow(e);
    expect(err).toEqual([]);
  });
});

// The commands ported to the parser: each rejects bad usage with exit 2 and a message naming the flag,
// before loading any model.
describe('commands', () => {
  let out: string[];
  let err: string[];
  beforeEach(() => {
    out = [];
    err = [];
    jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
    jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  });
  afterEach(() => jest.restoreAllMocks());

  type Command = { run(argv: string[]): Promise<number> };
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const command = (name: string): Command => require(`../lib/cli/${name}`) as Command;

  test.each([
    ['classify', ['x.jpg', '--model', 'm.onnx', '--topp', '3'], /^mnq classify: unknown option '--topp' \(options: -m\/--model, -k\/--top, -b\/--batch, -t\/--threads, --json, --labels, --preprocess, --engine, --max-pixels, --decoders, -h\/--help\)/],
    ['classify', ['x.jpg', '--model', 'm.onnx', '--batch', '0'], /^mnq classify: --batch must be a positive integer, got '0'/],
    ['classify', ['x.jpg', '--model', 'm.onnx', '--engine', 'tvm'], /^mnq classify: --engine must be 'mnq' or 'ort', got 'tvm'/],
    ['classify', ['x.jpg', '--model', 'm.onnx', '--preprocess', 'bogus'], /^mnq classify: --preprocess: unknown preprocessing 'bogus'/],
    ['classify', ['x.jpg'], /^mnq classify: --model is required/],
    ['classify', ['--model', 'm.onnx'], /^mnq classify: name at least one image, directory or glob/],
    ['bench-classify', ['dir', '--repeat', 'x'], /^mnq bench-classify: --repeat must be a positive integer, got 'x'/],
    ['bench-classify', ['--vs-ort'], /^mnq bench-classify: missing directory of images/],
    ['bench-classify', ['dir', '--ort'], /^mnq bench-classify: unknown option '--ort' \(options: -m\/--model, --batch, --threads, --vs-ort, --ort-only, --limit, --repeat, --decoders, --json, -h\/--help\)/],
    ['bench', ['m.onnx', '--runs', '5'], /^mnq bench: --runs must be an integer >= 50, got '5'/],
    ['bench', ['m.onnx', '--threads', '0'], /^mnq bench: --threads must be an integer from 1 to 256, got '0'/],
    ['bench', ['m.onnx', '--warmup', '-1'], /^mnq bench: --warmup must be a non-negative integer, got '-1'/],
    ['bench', ['m.onnx', '--engine', 'tvm'], /^mnq bench: --engine must be 'mnq', 'ort' or 'ort-int8', got 'tvm'/],
    ['bench', ['m.onnx', '--vs'], /^mnq bench: unknown option '--vs' \(options: --threads, --batch, --runs, --warmup, --vs-ort, --json, -h\/--help\)/],
    ['bench', [], /^mnq bench: missing model file/],
    ['check-ort', ['m.onnx', '--count', '0'], /^mnq check-ort: --count must be a positive integer, got '0'/],
    ['check-ort', ['m.onnx', '--threads', '1.5'], /^mnq check-ort: --threads must be an integer from 1 to 256, got '1.5'/],
    ['classify', ['x.jpg', '-m', 'm.onnx', '--threads', '999'], /^mnq classify: --threads must be an integer from 1 to 256, got '999'/],
    ['serve', ['-m', 'a=x.onnx', '--threads', '257'], /^mnq serve: --threads must be an integer from 1 to 256, got '257'/],
    ['check-ort', ['m.onnx', '--images'], /^mnq check-ort: --images needs a value/],
    ['check-ort', ['m.onnx', '--layer'], /^mnq check-ort: unknown option '--layer' \(options: --images, --count, --preprocess, --layers, --threads, --ort-x86-default, --json, -h\/--help\)/],
    ['check-ort', ['a.onnx', 'b.onnx'], /^mnq check-ort: unexpected arguments: b.onnx/],
    ['fetch', ['--lst'], /^mnq fetch: unknown option '--lst' \(options: --from, --dir, --force, --list, --json, -h\/--help\)/],
    ['fetch', ['--list', '--json=1'], /^mnq fetch: --json takes no value/],
    ['info', ['v2', '--width', 'wide'], /^mnq info: --width must be a number, got 'wide'/],
    ['info', ['v2', '--resolution', '1.5'], /^mnq info: --resolution must be an integer, got '1.5'/],
    ['info', ['v2', '--layer'], /^mnq info: unknown option '--layer' \(options: --width, --resolution, --classes, --json, --layers, -h\/--help\)/],
    ['info', [], /^mnq info: missing model file or architecture/],
    ['build', ['v2', '-o'], /^mnq build: -o needs a value/],
    ['build', ['v2', '-o', '--json'], /^mnq build: -o needs a value, got option '--json'/],
    ['build', ['v2', '--seed', '1', '--seed', '2', '-o', 'x.onnx'], /^mnq build: --seed given twice/],
    ['build', ['v2', '--padding', 'same', '-o', 'x.onnx'], /^mnq build: --padding must be 'symmetric' or 'tf-same', got 'same'/],
    ['calibrate', ['f.onnx', '--images', 'dir'], /^mnq calibrate: -o\/--output FILE is required/],
    ['calibrate', ['f.onnx', '-o', 'x.onnx'], /^mnq calibrate: --images DIR is required/],
    ['calibrate', ['f.onnx', '--images', 'd', '-o', 'x.onnx', '--method', 'kl'], /^mnq calibrate: --method must be 'minmax', 'percentile', 'entropy' or 'mse', got 'kl'/],
    ['calibrate', ['f.onnx', '--images', 'd', '-o', 'x.onnx', '--percentile', '0'], /^mnq calibrate: --percentile must be a number > 0, got '0'/],
    ['calibrate', ['f.onnx', '--images', 'd', '-o', 'x.onnx', '--percentile', '101'], /^mnq calibrate: --percentile must be in \(0, 100\], got '101'/],
    ['calibrate', ['f.onnx', '--images', 'd', '-o', 'x.onnx', '--limit', '0'], /^mnq calibrate: --limit must be a positive integer, got '0'/],
    ['calibrate', ['f.onnx', '--images', 'd', '-o', 'x.onnx', '--equalise'], /^mnq calibrate: unknown option '--equalise' \(options: --images, -o\/--output, --method/],
    ['calibrate', ['--images', 'd', '-o', 'x.onnx'], /^mnq calibrate: missing float model/],
    ['compare', ['f.onnx', 'q.onnx'], /^mnq compare: --images DIR is required/],
    ['compare', ['f.onnx', '--images', 'd'], /^mnq compare: need a float model and an int8 model, got 1 file\(s\)/],
    ['compare', ['f.onnx', 'q.onnx', '--images', 'd', '--limit', '-3'], /^mnq compare: --limit must be a positive integer, got '-3'/],
    ['compare', ['f.onnx', 'q.onnx', '--images', 'd', '--layers'], /^mnq compare: unknown option '--layers' \(options: --images, --limit, --preprocess, --html, --json, --no-layers, --no-mnq, --force, -h\/--help\)/],
    ['worker', ['--queue', 'q', '--model', 'm.onnx'], /^mnq worker: --redis is required \(e\.g\. --redis redis:\/\/127\.0\.0\.1:6379\)/],
    ['worker', ['--redis', 'redis://h:6379', '--model', 'm.onnx'], /^mnq worker: --queue is required/],
    ['worker', ['--redis', 'redis://h:6379', '--queue', 'q'], /^mnq worker: --model is required/],
    ['worker', ['--redis', 'http://h:6379', '--queue', 'q', '--model', 'm.onnx'], /^mnq worker: --redis must be a redis:\/\/ or rediss:\/\/ URL, got 'http:\/\/h:6379'/],
    ['worker', ['--redis', 'h:6379x', '--queue', 'q', '--model', 'm.onnx'], /^mnq worker: --redis must be a redis:\/\/ or rediss:\/\/ URL/],
    ['worker', ['--redis', 'redis://h', '--queue', 'a:b', '--model', 'm.onnx'], /^mnq worker: queue name must be 1-100 letters, digits, '.', '_' or '-' \(starting with a letter or digit\), got 'a:b'/],
    ['worker', ['--redis', 'redis://h', '--queue', 'q', '--model', 'm.onnx', '--allow-host', 'http://x.com'], /^mnq worker: --allow-host 'http:\/\/x.com' is not a host name or address with an optional :port/],
    ['worker', ['--redis', 'redis://h', '--queue', 'q', '--model', 'm.onnx', '--concurrency', '0'], /^mnq worker: --concurrency must be a positive integer, got '0'/],
    ['worker', ['--redis', 'redis://h', '--queue', 'q', '--model', 'm.onnx', '--lock-duration', '10'], /^mnq worker: --lock-duration must be an integer >= 1000, got '10'/],
    ['worker', ['--redis', 'redis://h', '--queue', 'q', '--model', 'm.onnx', '--max-bytes', '1e'], /^mnq worker: --max-bytes must be a positive integer, got '1e'/],
    ['worker', ['--redis', 'redis://h', '--queue', 'q', '--model', 'm.onnx', 'extra'], /^mnq worker: unexpected arguments: extra/],
    ['worker', ['--redis', 'redis://h', '--queue', 'q', '--model', 'm.onnx', '--roots', 'd'], /^mnq worker: unknown option '--roots' \(options: --redis, --queue, -m\/--model, -t\/--threads, -c\/--concurrency, -b\/--batch, --root, --allow-host, --max-bytes, --fetch-timeout, --max-pixels, --labels, --preprocess, --lock-duration, --stalled-interval, --max-stalled, -q\/--quiet, -h\/--help\)/],
    ['submit', ['dir', '--redis', 'redis://h', '--queue', 'q'], /^mnq submit: -o\/--output is required \(the results file; it is also what a rerun resumes from\)/],
    ['submit', ['--redis', 'redis://h', '--queue', 'q', '-o', 'r.jsonl'], /^mnq submit: missing directory or list file/],
    ['submit', ['a', 'b', '--redis', 'redis://h', '--queue', 'q', '-o', 'r.jsonl'], /^mnq submit: unexpected arguments: b/],
    ['submit', ['dir', '--queue', 'q', '-o', 'r.jsonl'], /^mnq submit: --redis is required/],
    ['submit', ['dir', '--redis', 'redis://h', '-o', 'r.jsonl'], /^mnq submit: --queue is required/],
    ['submit', ['dir', '--redis', 'redis://h', '--queue', 'q', '-o', 'r.jsonl', '--chunk', '0'], /^mnq submit: --chunk must be a positive integer, got '0'/],
    ['submit', ['dir', '--redis', 'redis://h', '--queue', 'q', '-o', 'r.jsonl', '--chunk', '5000'], /^mnq submit: --chunk must be at most 4096, got 5000/],
    ['submit', ['dir', '--redis', 'redis://h', '--queue', 'q', '-o', 'r.jsonl', '--top', '1001'], /^mnq submit: --top must be at most 1000, got 1001/],
    ['submit', ['dir', '--redis', 'redis://h', '--queue', 'q', '-o', 'r.jsonl', '--in-flight', 'many'], /^mnq submit: --in-flight must be a positive integer, got 'many'/],
    ['submit', ['dir', '--redis', 'redis://h', '--queue', 'q', '-o', 'r.jsonl', '--chunks', '3'], /^mnq submit: unknown option '--chunks' \(options: --redis, --queue, -o\/--output, --chunk, -k\/--top, --in-flight, --attempts, -q\/--quiet, -h\/--help\)/],
    ['serve', [], /^mnq serve: name at least one model: --model NAME=model.onnx/],
    ['serve', ['x.onnx'], /^mnq serve: unexpected arguments: x.onnx \(name models with --model\)/],
    ['serve', ['--model', '=x.onnx'], /^mnq serve: --model '=x.onnx': the name before '=' is empty/],
    ['serve', ['--model', 'a b=x.onnx'], /^mnq serve: --model 'a b=x.onnx': the name 'a b' must be letters, digits, '.', '_' or '-'/],
    ['serve', ['--model', 'a='], /^mnq serve: --model 'a=': no model file after '='/],
    ['serve', ['--model', 'dir/my model.onnx'], /^mnq serve: --model 'dir\/my model.onnx': 'my model' cannot be a model name .* write --model NAME=dir\/my model.onnx/],
    ['serve', ['-m', 'a=x.onnx', '-m', 'b/a.onnx'], /^mnq serve: two models are named 'a': name them with --model NAME=FILE/],
    ['serve', ['-m', 'a=x.onnx', '--max-batch', '0'], /^mnq serve: --max-batch must be a positive integer, got '0'/],
    ['serve', ['-m', 'a=x.onnx', '--max-delay-ms', '-1'], /^mnq serve: --max-delay-ms must be a number >= 0, got '-1'/],
    ['serve', ['-m', 'a=x.onnx', '--max-queue', 'many'], /^mnq serve: --max-queue must be a positive integer, got 'many'/],
    ['serve', ['-m', 'a=x.onnx', '--port', '70000'], /^mnq serve: --port must be from 0 to 65535, got '70000'/],
    ['serve', ['-m', 'a=x.onnx', '--body-limit', 'lots'], /^mnq serve: --body-limit must be a byte count such as 1048576, 512kb or 16mb, got 'lots'/],
    ['serve', ['-m', 'a=x.onnx', '--preprocess', 'bogus'], /^mnq serve: --preprocess: unknown preprocessing 'bogus'/],
    ['serve', ['-m', 'a=x.onnx', '--batch', '4'], /^mnq serve: unknown option '--batch' \(options: -m\/--model, --host, -p\/--port, -t\/--threads, --max-batch, --max-delay-ms, --max-queue, --timeout-ms, --body-limit, --max-pixels, -k\/--top, --labels, --preprocess, --decoders, --log, -h\/--help\)/],
    ['build', ['-x', 'v2'], /^mnq build: unknown option '-x' \(options: --width, --resolution, --classes, --weights, --seed, --opset, --bn, --padding, --json, -o\/--output, -h\/--help\)/],
  ])('%s %j: exit 2, %s', async (name, argv, message) => {
    expect(await command(name).run(argv as string[])).toBe(2);
    expect(err.join('\n')).toMatch(message);
    expect(out).toEqual([]);
  });

  test.each(['classify', 'bench-classify', 'bench', 'check-ort', 'fetch', 'info', 'build', 'calibrate', 'compare', 'worker', 'submit', 'serve'])('%s --help / -h: usage on stdout, exit 0', async (name) => {
    for (const argv of [['--help'], ['x', '-h'], ['--frobnicate', '--help']]) {
      out.length = 0;
      expect(await command(name).run(argv)).toBe(0);
      expect(out.join('\n')).toMatch(new RegExp(`^usage: mnq ${name} `));
      expect(err).toEqual([]);
    }
  });
});

describe('mnq (the entry point)', () => {
  const cliJs = path.join(REPO_ROOT, 'dist', 'cli.js');
  const mnq = (...argv: string[]) => spawnSync(process.execPath, [cliJs, ...argv], { encoding: 'utf8' });

  test("'mnq help <command>' prints that command's usage", () => {
    checkDist(['cli.ts', 'cli/classify.ts', 'cli/info.ts'], 'these tests');
    for (const name of ['classify', 'info']) {
      const r = mnq('help', name);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: mnq ${name} `));
    }
    const top = mnq('help');
    expect(top.stdout).toMatch(/^usage: mnq <command>/);
  });

  test('npx mnq in the repository prints no npm warning (.npmrc holds a key only onnxruntime-node reads)', () => {
    checkDist(['cli.ts'], 'npx mnq');
    const r = spawnSync('npx', ['--no-install', 'mnq', '--version'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout.trim()).toBe(require('../package.json').version);
  });

  test("errors print once as 'mnq <command>: message', without the library's own 'mnq: ' prefix", () => {
    expect(errorLine('classify', new RangeError('mnq: threads must be an integer from 1 to 256, got 999'))).toBe('mnq classify: threads must be an integer from 1 to 256, got 999');
    expect(errorLine('frobnicate', new Error('x'))).toBe('mnq: x');
    expect(errorLine(undefined, 'plain')).toBe('mnq: plain');
  });
});

describe('serve --body-limit sizes', () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { parseBytes } = require('../lib/cli/serve') as typeof import('../lib/cli/serve');
  test.each([
    ['1048576', 1048576], ['512kb', 524288], ['512K', 524288], ['16mb', 16777216], ['1.5m', 1572864], ['1gb', 1073741824], ['10b', 10],
    ['0', null], ['', null], ['-5', null], ['16 MiB', null], ['3gb', null], ['lots', null],
  ])('%j -> %p', (text, bytes) => {
    expect(parseBytes(text)).toBe(bytes);
  });
});
