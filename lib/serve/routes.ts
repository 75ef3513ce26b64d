// The HTTP endpoints of `mnq serve`, on fastify:
//   GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/{name}, /v2/models/{name}/ready
//   POST /v2/models/{name}/infer              Open Inference Protocol (KServe v2), JSON or binary tensors
//   POST /v1/models/{name}:classify[?top=K]   an image body (JPEG, PNG, WebP) or multipart with several
//   GET  /metrics                             Prometheus
// Every error is a JSON body { "error": "..." }. Requests for a model are admitted before their body is read:
// unknown model 404, shutting down 503, wrong Content-Type 415, Content-Length over the limit 413, full queue 429
// with Retry-After, all at once (the body is then read and dropped by Node, and the connection stays usable). An
// admitted request holds room for its first image from then on, while its body arrives (admissions).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'http';
import { ImageError } from '../index';
import type { Prediction } from '../index';
import { CancelledError, Reservation, Submitted, TimeoutError } from './batcher';
import { badRequest, HttpError } from './http-error';
import { describeBytes, IMAGE_CONTENT_TYPES, imageFormat } from './image-format';
import { HEADER_LENGTH, inferResponse, parseInferRequest } from './infer';
import { RejectReason, ServerMetrics } from './metrics';
import type { ResolvedOptions } from './options';
import type { Pixels, ServedModel } from './served-model';

/** What the routes share with the server. */
export interface ServerState {
  readonly models: ReadonlyMap<string, ServedModel>;
  readonly options: ResolvedOptions;
  readonly metrics: ServerMetrics;
  readonly version: string;
  /** set by close(): inference is refused with 503, readiness is 503 */
  draining: boolean;
}

const INFER_CONTENT_TYPES = ['application/json', 'application/octet-stream'];
const CLASSIFY_CONTENT_TYPES = [...IMAGE_CONTENT_TYPES, 'multipart/form-data'];
/** Bodies declared larger than this many times the limit are not read and dropped: the connection is closed. */
const DRAIN_FACTOR = 4;

function mediaType(req: FastifyRequest): string {
  return String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/** The model a request names: `/v2/models/:name/...` or `/v1/models/:name:classify`. Throws 404. */
function modelOf(state: ServerState, req: FastifyRequest): ServedModel {
  const params = req.params as { name?: string; target?: string };
  let name = params.name;
  if (params.target !== undefined) {
    const colon = params.target.lastIndexOf(':');
    const verb = colon < 0 ? '' : params.target.slice(colon + 1);
    if (verb !== 'classify') {
      throw new HttpError(404, `no route ${req.method} /v1/models/${params.target}: the v1 API has POST /v1/models/{name}:classify`);
    }
    name = params.target.slice(0, colon);
  }
  const model = name === undefined ? undefined : state.models.get(name);
  if (!model) throw new HttpError(404, `unknown model '${name}' (this server has: ${[...state.models.keys()].join(', ')})`);
  return model;
}

/** Seconds a client should wait before retrying: how long the queue takes to drain at the recent rate (1 to 60). */
function retryAfter(state: ServerState, model: ServedModel): string {
  const rate = state.metrics.imagesPerSecond(model.name);
  const s = rate > 0 ? Math.ceil(model.queueDepth / rate) : 1;
  return String(Math.min(60, Math.max(1, s)));
}

function queueFull(state: ServerState, model: ServedModel): HttpError {
  return new HttpError(429, `model '${model.name}' has ${model.queueDepth} images queued, its limit (--max-queue ${state.options.maxQueue}); retry later`, { 'retry-after': retryAfter(state, model) });
}

/**
 * The room each admitted request reserved for its first image before its body was read, until its handler takes
 * it (reserveFor). The request gives it back if it ends without taking it, or at its deadline if its body is
 * still arriving then (so a stalled upload holds room no longer than a queued image may wait).
 */
const admissions = new WeakMap<FastifyRequest, Reservation>();

function hold(state: ServerState, model: ServedModel, req: FastifyRequest, reply: FastifyReply, r: Reservation): void {
  admissions.set(req, r);
  const giveBack = (): void => {
    if (admissions.get(req) !== r) return;
    admissions.delete(req);
    model.release(r);
  };
  const timer = setTimeout(giveBack, state.options.timeoutMs);
  timer.unref();
  reply.raw.once('close', () => {
    clearTimeout(timer);
    giveBack();
  });
}

/**
 * Room for a request's `n` images: the room it was admitted with (when it still holds it: first call only),
 * resized to `n` if need be, or new room; 429 when the queue has too little.
 */
function reserveFor(state: ServerState, model: ServedModel, req: FastifyRequest, n: number): Reservation {
  const r = admissions.get(req);
  if (r) {
    admissions.delete(req);
    if (r.size === n) return r;
    model.release(r); // (then reserved again at its size, in the same tick)
  }
  return reserve(state, model, n);
}

/**
 * The admission check of inference requests, before their body is read (an onRequest hook): the model, not
 * draining, the Content-Type, the declared size, then room in the queue for the first image, which the request
 * holds from now on (hold).
 */
function admit(state: ServerState, contentTypes: string[]) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const model = modelOf(state, req);
    if (state.draining) {
      state.metrics.rejected.inc({ model: model.name, reason: 'draining' });
      throw new HttpError(503, 'the server is shutting down', { connection: 'close' });
    }
    const type = mediaType(req);
    if (!contentTypes.includes(type)) {
      throw new HttpError(415, `unsupported Content-Type '${type || '(none)'}': send ${contentTypes.join(', ')}`);
    }
    const limit = state.options.bodyLimit;
    const length = Number(req.headers['content-length']);
    if (length > limit) {
      // a body up to DRAIN_FACTOR × the limit is read and dropped (the client sees the 413, not a reset); larger: close
      throw new HttpError(413, `the request body has ${length} bytes, more than this server's limit of ${limit} (--body-limit)`,
        length > DRAIN_FACTOR * limit ? { connection: 'close' } : {});
    }
    hold(state, model, req, reply, reserve(state, model, 1));
  };
}

/**
 * One request's stop conditions: its deadline, its client going away (then its queued jobs are cancelled
 * before they are computed), or a failed sibling image of a multipart request.
 */
class RequestWatch {
  private readonly cancels: Submitted<unknown>[] = [];
  private failure: Error | null = null;
  gone = false;

  constructor(res: ServerResponse, readonly deadline: number, private readonly timeoutMs: number) {
    res.once('close', () => {
      if (!res.writableFinished) {
        this.gone = true;
        this.cancelAll();
      }
    });
  }

  /** Why the request should stop, or null. */
  stop(): Error | null {
    if (this.gone) return new CancelledError('the client went away');
    if (this.failure) return this.failure;
    if (performance.now() >= this.deadline) return new TimeoutError(`the request timed out after ${this.timeoutMs} ms before it was computed (--timeout-ms)`);
    return null;
  }

  track<T>(s: Submitted<T>): Submitted<T> {
    this.cancels.push(s as Submitted<unknown>);
    if (this.gone || this.failure) s.cancel();
    return s;
  }

  fail(e: Error): void {
    if (!this.failure) this.failure = e;
    this.cancelAll();
  }

  private cancelAll(): void {
    for (const s of this.cancels) s.cancel();
  }
}

function reserve(state: ServerState, model: ServedModel, n: number): Reservation {
  const r = model.reserve(n);
  if (!r) {
    state.metrics.rejected.inc({ model: model.name, reason: 'queue_full' });
    throw queueFull(state, model);
  }
  return r;
}

/** Classifies one encoded image of `req`: format check, reservation, decode (in a slot), batch, top-k. */
async function classifyImage(state: ServerState, model: ServedModel, req: FastifyRequest, bytes: Buffer, name: string, k: number, watch: RequestWatch): Promise<Prediction[]> {
  if (!imageFormat(bytes)) throw badRequest(`${name}: not a JPEG, PNG or WebP image: ${describeBytes(bytes)}`);
  const r = reserveFor(state, model, req, 1);
  let pixels: Pixels;
  try {
    pixels = await model.decode(bytes, name, () => watch.stop());
  } catch (e) {
    model.release(r);
    throw e;
  }
  const row = await watch.track(model.submitImage(r, pixels, watch.deadline)).result;
  return model.predictions(row, k);
}

function topOf(state: ServerState, model: ServedModel, query: unknown): number {
  const v = (query as Record<string, unknown> | undefined)?.top;
  if (v === undefined) return state.options.topK;
  const k = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || k < 1) throw badRequest(`?top must be a positive integer, got '${String(v)}'`);
  return Math.min(k, model.outputLength);
}

async function classifyRoute(state: ServerState, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const model = modelOf(state, req);
  if (model.noImagesReason) throw badRequest(`model '${model.name}' takes no images: ${model.noImagesReason}`);
  const k = topOf(state, model, req.query);
  const watch = new RequestWatch(reply.raw, performance.now() - reply.elapsedTime + state.options.timeoutMs, state.options.timeoutMs);
  if (!req.isMultipart()) {
    const why = watch.stop(); // (its body arrived after its deadline)
    if (why) throw why;
    const body = req.body as Buffer;
    return { model: model.name, predictions: await classifyImage(state, model, req, body, 'image', k, watch) };
  }
  // multipart: every file part is one image, decoded as soon as it has arrived; results in part order
  const names: string[] = []; // each part's file name, else its field name
  const results: Promise<Prediction[]>[] = [];
  const limit = state.options.bodyLimit;
  try {
    for await (const part of req.parts({ limits: { fileSize: limit, files: state.options.maxQueue, fields: 32, parts: state.options.maxQueue + 32 } })) {
      if (part.type !== 'file') continue;
      const bytes = await part.toBuffer();
      const name = part.filename || part.fieldname;
      names.push(name);
      const p = classifyImage(state, model, req, bytes, `image '${name}'`, k, watch);
      p.catch((e: Error) => watch.fail(e));
      results.push(p);
    }
  } catch (e) {
    watch.fail(e as Error);
    await Promise.allSettled(results);
    // busboy's own parse errors carry no status: the body is malformed
    if (e instanceof Error && (e as FastifyError).statusCode === undefined && !(e instanceof HttpError)) {
      throw badRequest(`the multipart body is malformed: ${e.message}`);
    }
    throw e;
  }
  if (!results.length) throw badRequest('the multipart body has no file parts: send each image as a file part');
  const settled = await Promise.allSettled(results);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected' && !(s.reason instanceof CancelledError))
    ?? settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return {
    model: model.name,
    results: settled.map((s, i) => ({ image: names[i], predictions: (s as PromiseFulfilledResult<Prediction[]>).value })),
  };
}

async function inferRoute(state: ServerState, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const model = modelOf(state, req);
  const maxBatch = Math.min(model.maxBatch, state.options.maxQueue);
  const request = parseInferRequest(req.body as Buffer, req.headers[HEADER_LENGTH], {
    name: model.inputName, dims: model.itemDims, maxBatch, outputs: model.model.outputs.map((o) => o.name),
  });
  const watch = new RequestWatch(reply.raw, performance.now() - reply.elapsedTime + state.options.timeoutMs, state.options.timeoutMs);
  const why = watch.stop();
  if (why) throw why;
  const r = reserveFor(state, model, req, request.batch);
  const rows = await watch.track(model.submitTensor(r, request.batch, request.write, watch.deadline)).result;
  const { body, headers } = inferResponse(model.name, request, model.model.outputs[0].name, rows, [request.batch, ...model.outputDims]);
  return reply.headers(headers).send(body);
}

/** Fastify's and the multipart plugin's own errors, in words a client can act on. */
function describeFrameworkError(e: FastifyError, state: ServerState, req: FastifyRequest): string {
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `the request body is larger than this server's limit of ${state.options.bodyLimit} bytes (--body-limit)`;
    case 'FST_REQ_FILE_TOO_LARGE':
      return `an image part is larger than this server's limit of ${state.options.bodyLimit} bytes (--body-limit)`;
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
      return `the multipart body has more images than the queue holds (--max-queue ${state.options.maxQueue})`;
    case 'FST_FIELDS_LIMIT':
      return 'the multipart body has too many non-file fields';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `unsupported Content-Type '${mediaType(req) || '(none)'}'`;
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'the request body does not match its Content-Length';
    default:
      return e.message;
  }
}

/** The model name in a request's URL, if any (for counting rejections). */
function modelNameOf(req: FastifyRequest): string | undefined {
  const p = req.params as { name?: string; target?: string } | undefined;
  return p?.name ?? (p?.target?.includes(':') ? p.target.slice(0, p.target.lastIndexOf(':')) : undefined);
}

/** Turns any error into its status, headers and { error } body; counts rejections. */
function errorReply(state: ServerState, err: unknown, req: FastifyRequest): { status: number; headers: Record<string, string>; message: string } {
  const reject = (reason: RejectReason): void => {
    const model = modelNameOf(req);
    if (model !== undefined && state.models.has(model)) state.metrics.rejected.inc({ model, reason });
  };
  if (err instanceof HttpError) return { status: err.statusCode, headers: err.headers, message: err.message };
  if (err instanceof ImageError) return { status: 400, headers: {}, message: err.message };
  if (err instanceof TimeoutError) {
    reject('timeout');
    return { status: 503, headers: { 'retry-after': '1' }, message: err.message };
  }
  if (err instanceof CancelledError) {
    reject('cancelled');
    return { status: 503, headers: {}, message: err.message };
  }
  const e = err as FastifyError;
  const status = typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  if (status < 500) return { status, headers: {}, message: describeFrameworkError(e, state, req) };
  req.log.error({ err }, 'internal error');
  return { status, headers: {}, message: `internal error: ${e?.message ?? String(err)}` };
}

/** Registers every route, the error and not-found handlers and the metrics hooks. */
export function registerRoutes(app: FastifyInstance, state: ServerState): void {
  const { metrics } = state;

  app.addHook('onSend', async (_req, reply) => {
    if (state.draining) reply.header('connection', 'close'); // so keep-alive clients let go during shutdown
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.response(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((err, req, reply) => {
    const { status, headers, message } = errorReply(state, err, req);
    return reply.code(status).headers(headers).type('application/json; charset=utf-8').send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({
    error: `no route ${req.method} ${req.url.split('?')[0]}: mnq serves GET /v2/health/live, /v2/health/ready, /v2, /v2/models/{name}, /v2/models/{name}/ready, /metrics; POST /v2/models/{name}/infer, /v1/models/{name}:classify`,
  }));

  // health and metadata
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_req, reply) => {
    if (state.draining) return reply.code(503).send({ ready: false, error: 'the server is shutting down' });
    return { ready: true };
  });
  app.get('/v2', async () => ({ name: 'mnq', version: state.version, extensions: ['binary_tensor_data'] }));
  app.get('/v2/models/:name', async (req) => modelOf(state, req).metadata());
  app.get('/v2/models/:name/ready', async (req, reply) => {
    const model = modelOf(state, req);
    if (state.draining) return reply.code(503).send({ name: model.name, ready: false, error: 'the server is shutting down' });
    return { name: model.name, ready: true };
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  // inference
  app.post('/v2/models/:name/infer', { onRequest: admit(state, INFER_CONTENT_TYPES) }, (req, reply) => inferRoute(state, req, reply));
  app.post('/v1/models/:target', { onRequest: admit(state, CLASSIFY_CONTENT_TYPES) }, (req, reply) => classifyRoute(state, req, reply));
}
