// The options of `createServer` / `mnq serve`, their defaults, and their checks (a TypeError or RangeError naming
// the option, before anything is loaded).
import type { ClassifyOptions } from '../index';
import type { ServableModel } from './served-model';

/** One model to serve, with its own preprocessing and labels. */
export interface ServeModelSpec {
  /** an int8 ONNX file, its bytes, or a loaded model (which the server does not dispose) */
  model: string | Uint8Array | ServableModel;
  /** preprocessing of images (default: the server's, else from the model's metadata, as classify does) */
  preprocess?: ClassifyOptions['preprocess'];
  /** labels (default: the server's, else from the model's metadata or its class count) */
  labels?: ClassifyOptions['labels'];
}

export interface ServeOptions {
  /** name → model; names are letters, digits, '.', '_', '-' (they appear in URLs) */
  models: Record<string, string | Uint8Array | ServableModel | ServeModelSpec>;
  /** interface to listen on (default '127.0.0.1': loopback only) */
  host?: string;
  /** port (default 8080; 0 picks a free one) */
  port?: number;
  /** native threads per model (default 1) */
  threads?: number;
  /** most images per model run (default 32) */
  maxBatch?: number;
  /** how long the oldest queued request waits for others to fill a batch, ms (default 5) */
  maxDelayMs?: number;
  /** most images admitted (decoding or queued) per model; more are refused with 429 (default 256) */
  maxQueue?: number;
  /** batches computing at once per model (default 1) */
  maxInFlight?: number;
  /** a request not computing by this many ms after it arrived gets 503 (default 10000) */
  timeoutMs?: number;
  /** largest request body, bytes; larger gets 413 (default 16 MiB) */
  bodyLimit?: number;
  /** largest image, pixels; larger gets 400 (default 50,000,000; false: none) */
  maxPixels?: number | false;
  /** classes per image when the request does not say (?top=K; default 5) */
  topK?: number;
  /** images decoded at once (default: sized from the cores and threads, as classify does) */
  decoders?: number;
  /** preprocessing for every model without its own */
  preprocess?: ClassifyOptions['preprocess'];
  /** labels for every model without its own */
  labels?: ClassifyOptions['labels'];
  /** close(): after this many ms, connections still open are cut (default 30000) */
  drainTimeoutMs?: number;
  /** fastify's logger (pino) options, or true for info-level JSON logs on stdout (default false) */
  logger?: boolean | Record<string, unknown>;
}

export interface ResolvedOptions extends Required<Omit<ServeOptions, 'models' | 'decoders' | 'preprocess' | 'labels'>> {
  models: [string, ServeModelSpec][];
  decoders?: number;
}

export const DEFAULTS = Object.freeze({
  host: '127.0.0.1', port: 8080, threads: 1, maxBatch: 32, maxDelayMs: 5, maxQueue: 256, maxInFlight: 1,
  timeoutMs: 10_000, bodyLimit: 16 * 1024 * 1024, maxPixels: 50_000_000, topK: 5, drainTimeoutMs: 30_000,
});

export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function isServable(v: unknown): v is ServableModel {
  return typeof v === 'object' && v !== null && 'inputs' in v && typeof (v as { run?: unknown }).run === 'function';
}

function int(v: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`serve: ${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

/** The options with their defaults, checked. */
export function resolveOptions(options: ServeOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new TypeError('serve: options must be an object such as { models: { name: "model.onnx" } }');
  const { models } = options;
  if (!models || typeof models !== 'object' || Array.isArray(models) || Object.keys(models).length === 0) {
    throw new TypeError('serve: options.models must name at least one model, e.g. { models: { mobilenet: "mobilenet.int8.onnx" } }');
  }
  const list: [string, ServeModelSpec][] = Object.entries(models).map(([name, v]) => {
    if (!MODEL_NAME.test(name)) throw new RangeError(`serve: model name '${name}' must be letters, digits, '.', '_' or '-' (it is part of URLs)`);
    const spec: ServeModelSpec = typeof v === 'string' || v instanceof Uint8Array || isServable(v) ? { model: v } : (v as ServeModelSpec);
    if (!spec || typeof spec !== 'object' || !(typeof spec.model === 'string' || spec.model instanceof Uint8Array || isServable(spec.model))) {
      throw new TypeError(`serve: model '${name}' must be an ONNX file path, ONNX bytes, a loaded model or { model, preprocess?, labels? }`);
    }
    return [name, { model: spec.model, preprocess: spec.preprocess ?? options.preprocess, labels: spec.labels ?? options.labels }];
  });
  const host = options.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || !host) throw new TypeError(`serve: host must be a host name or address, got ${String(host)}`);
  const maxDelayMs = options.maxDelayMs ?? DEFAULTS.maxDelayMs;
  if (typeof maxDelayMs !== 'number' || !(maxDelayMs >= 0 && maxDelayMs <= 60_000)) throw new RangeError(`serve: maxDelayMs must be a number from 0 to 60000, got ${String(maxDelayMs)}`);
  const maxPixels = options.maxPixels ?? DEFAULTS.maxPixels;
  if (maxPixels !== false) int(maxPixels, 'maxPixels', 1);
  const logger = options.logger ?? false;
  if (typeof logger !== 'boolean' && (typeof logger !== 'object' || logger === null)) throw new TypeError('serve: logger must be a boolean or pino options');
  return {
    models: list,
    host,
    port: int(options.port ?? DEFAULTS.port, 'port', 0, 65535),
    threads: int(options.threads ?? DEFAULTS.threads, 'threads', 1, 256),
    maxBatch: int(options.maxBatch ?? DEFAULTS.maxBatch, 'maxBatch', 1, 4096),
    maxDelayMs,
    maxQueue: int(options.maxQueue ?? DEFAULTS.maxQueue, 'maxQueue', 1, 1_000_000),
    maxInFlight: int(options.maxInFlight ?? DEFAULTS.maxInFlight, 'maxInFlight', 1, 64),
    timeoutMs: int(options.timeoutMs ?? DEFAULTS.timeoutMs, 'timeoutMs', 1),
    bodyLimit: int(options.bodyLimit ?? DEFAULTS.bodyLimit, 'bodyLimit', 1, 2 ** 31 - 1),
    maxPixels,
    topK: int(options.topK ?? DEFAULTS.topK, 'topK', 1),
    decoders: options.decoders === undefined ? undefined : int(options.decoders, 'decoders', 1, 256),
    drainTimeoutMs: int(options.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs, 'drainTimeoutMs', 0),
    logger,
  };
}
