// `mnq serve --model NAME=model.onnx [--model ...] [--port 8080] [--threads N] [--max-batch 32] [--max-delay-ms 5]
// [--max-queue 256] ...`: an inference server (lib/serve; docs/serve.md). Runs until SIGTERM or SIGINT, then
// drains (requests in flight are answered) and exits 0.
import * as os from 'os';
import * as path from 'path';
import { parsePreprocess } from '../preprocess-spec';
import { loadLabels } from '../labels';
import { createServer, ServeOptions } from '../serve';
import { DEFAULTS, MODEL_NAME, ServeModelSpec } from '../serve/options';
import { parseArgs, reportUsageError, UsageError } from './args';
import { modelDefaults } from './classify';
import { resolveModelPath } from './fetch';
import { MAX_THREADS } from '../native';

export const summary = 'an HTTP inference server: dynamic batching, Open Inference Protocol, :classify, metrics';

function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

const HELP = `usage: mnq serve --model [NAME=]MODEL [--model ...] [options]

  -m, --model [NAME=]M  a model to serve as NAME (default: the file name without .onnx): an int8 ONNX file or a
                        model fetched with 'mnq fetch'; repeat for more models
  --host H              interface to listen on (default ${DEFAULTS.host}: this machine only; 0.0.0.0: all)
  -p, --port P          port (default ${DEFAULTS.port}; 0: any free port)
  -t, --threads N       inference threads per model (default: all ${cores()} cores)
  --max-batch B         most images per model run (default ${DEFAULTS.maxBatch})
  --max-delay-ms D      how long a request waits for others to fill a batch (default ${DEFAULTS.maxDelayMs})
  --max-queue Q         most images waiting per model; more get 429 (default ${DEFAULTS.maxQueue})
  --timeout-ms T        a request not computing T ms after it arrived gets 503 (default ${DEFAULTS.timeoutMs})
  --body-limit BYTES    largest request body, e.g. 16mb (default 16mb); larger gets 413
  --max-pixels N        largest image in pixels (default ${DEFAULTS.maxPixels}); larger gets 400
  -k, --top K           classes per image when the request has no ?top= (default ${DEFAULTS.topK})
  --labels FILE         label file or set ('imagenet-1001', 'imagenet-1000') for every model
  --preprocess P        'tf', 'torch', 'raw', 'paddle' or a JSON spec for every model
  --decoders N          images decoded at once (default: from cores and threads)
  --log                 JSON request logs on stdout (fastify / pino)

Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME, /v2/models/NAME/ready, /metrics;
POST /v2/models/NAME/infer (Open Inference Protocol, JSON or binary tensors), POST /v1/models/NAME:classify
(a JPEG, PNG or WebP body, or multipart/form-data with several). Preprocessing and labels per model come from the
options, else the model's metadata or the model manifest, as in 'mnq classify'. SIGTERM / SIGINT: stop accepting,
answer the requests in flight, exit 0.`;

const FLAGS = {
  model: { type: 'string', short: 'm', repeatable: true }, host: { type: 'string' }, port: { type: 'string', short: 'p' },
  threads: { type: 'string', short: 't' }, 'max-batch': { type: 'string' }, 'max-delay-ms': { type: 'string' },
  'max-queue': { type: 'string' }, 'timeout-ms': { type: 'string' }, 'body-limit': { type: 'string' },
  'max-pixels': { type: 'string' }, top: { type: 'string', short: 'k' }, labels: { type: 'string' },
  preprocess: { type: 'string' }, decoders: { type: 'string' }, log: { type: 'boolean' },
} as const;

/** A byte count: 1048576, 512kb, 16mb, 1gb (powers of 1024). */
export function parseBytes(v: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?\s*$/i.exec(v);
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const n = Math.floor(Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1));
  return n >= 1 && n <= 2 ** 31 - 1 ? n : null;
}

/** `NAME=FILE` or `FILE` (named after the file). */
function parseModelArg(arg: string): { name: string; file: string } {
  const eq = arg.indexOf('=');
  if (eq === 0) throw new UsageError(`--model '${arg}': the name before '=' is empty`);
  if (eq > 0) {
    const name = arg.slice(0, eq);
    const file = arg.slice(eq + 1);
    if (!MODEL_NAME.test(name)) throw new UsageError(`--model '${arg}': the name '${name}' must be letters, digits, '.', '_' or '-'`);
    if (!file) throw new UsageError(`--model '${arg}': no model file after '='`);
    return { name, file };
  }
  const name = path.basename(arg).replace(/\.onnx$/i, '');
  if (!MODEL_NAME.test(name)) throw new UsageError(`--model '${arg}': '${name}' cannot be a model name (letters, digits, '.', '_', '-'); write --model NAME=${arg}`);
  return { name, file: arg };
}

interface Options {
  models: { name: string; file: string }[];
  server: Omit<ServeOptions, 'models'>;
}

/** The options, or null for --help; throws a UsageError for bad usage. */
function parseOptions(argv: string[]): Options | null {
  const args = parseArgs(argv, FLAGS);
  if (args.help) return null;
  if (args.positional.length) throw new UsageError(`unexpected arguments: ${args.positional.join(' ')} (name models with --model)`);
  const specs = args.strings('model');
  if (!specs.length) throw new UsageError('name at least one model: --model NAME=model.onnx');
  const models = specs.map(parseModelArg);
  const seen = new Set<string>();
  for (const m of models) {
    if (seen.has(m.name)) throw new UsageError(`two models are named '${m.name}': name them with --model NAME=FILE`);
    seen.add(m.name);
  }
  const port = args.int('port', { min: 0 });
  if (port !== undefined && port > 65535) throw new UsageError(`--port must be from 0 to 65535, got '${args.string('port')}'`);
  const bodyLimitText = args.string('body-limit');
  const bodyLimit = bodyLimitText === undefined ? undefined : parseBytes(bodyLimitText);
  if (bodyLimit === null) throw new UsageError(`--body-limit must be a byte count such as 1048576, 512kb or 16mb, got '${bodyLimitText}'`);
  const preprocess = args.string('preprocess');
  const labels = args.string('labels');
  try {
    if (preprocess) parsePreprocess(preprocess);
  } catch (e) {
    throw new UsageError(`--preprocess: ${(e as Error).message}`);
  }
  try {
    if (labels) loadLabels(labels);
  } catch (e) {
    throw new UsageError(`--labels: ${(e as Error).message}`);
  }
  return {
    models,
    server: {
      host: args.string('host'),
      port,
      threads: args.int('threads', { min: 1, max: MAX_THREADS }) ?? cores(),
      maxBatch: args.int('max-batch', { min: 1 }),
      maxDelayMs: args.number('max-delay-ms', { min: 0 }),
      maxQueue: args.int('max-queue', { min: 1 }),
      timeoutMs: args.int('timeout-ms', { min: 1 }),
      bodyLimit,
      maxPixels: args.int('max-pixels', { min: 1 }),
      topK: args.int('top', { min: 1 }),
      decoders: args.int('decoders', { min: 1 }),
      preprocess,
      labels,
      logger: args.bool('log'),
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  let parsed: Options | null;
  try {
    parsed = parseOptions(argv);
  } catch (e) {
    return reportUsageError('serve', e, HELP);
  }
  if (!parsed) {
    console.log(HELP);
    return 0;
  }
  const models: Record<string, ServeModelSpec> = {};
  for (const { name, file } of parsed.models) {
    const resolved = resolveModelPath(file);
    // preprocessing and labels as `mnq classify` finds them: the options, the model's metadata, the manifest
    const defaults = await modelDefaults(resolved);
    models[name] = { model: resolved, preprocess: parsed.server.preprocess ?? defaults.preprocess, labels: parsed.server.labels ?? defaults.labels };
  }
  const server = await createServer({ ...parsed.server, models });
  console.log(`mnq serve: listening on ${server.url}`);
  for (const [name, m] of server.models) {
    console.log(`  ${name}: ${server.url}/v2/models/${name}${m.takesImages ? `, ${server.url}/v1/models/${name}:classify` : ''} (max batch ${m.maxBatch})`);
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  console.error(`mnq serve: ${signal}: draining (requests in flight are answered; ${signal} again to stop at once)`);
  process.once(signal, () => {
    console.error('mnq serve: stopped without draining');
    process.exit(1);
  });
  await server.close();
  console.error('mnq serve: stopped');
  return 0;
}
