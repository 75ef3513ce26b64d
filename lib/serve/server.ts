// `createServer(options)`: loads the models, starts a fastify server with the routes of routes.ts, and returns it
// started. close() drains it: readiness turns 503 and new inference requests get 503 (still listening, so load
// balancers see it), queued batches start at once, and once every request in flight is answered (or after
// drainTimeoutMs) the server stops listening, closes its connections and disposes the models it loaded.
import fastify, { FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { load } from '../index';
import { acquireSharp, decodeConcurrency, releaseSharp } from '../image/decode-threads';
import { DecodeSlots } from './decode-slots';
import { ServerMetrics } from './metrics';
import { resolveOptions, ServeOptions } from './options';
import { IMAGE_CONTENT_TYPES } from './image-format';
import { registerRoutes, ServerState } from './routes';
import { ServableModel, ServedModel } from './served-model';

/** A started server. */
export interface MnqServer {
  /** http://host:port */
  readonly url: string;
  readonly host: string;
  /** the port it listens on (the one picked when options.port was 0) */
  readonly port: number;
  /** the served models by name: the model, its batch limit, whether it takes images */
  readonly models: ReadonlyMap<string, { model: ServableModel; maxBatch: number; takesImages: boolean }>;
  /** the fastify instance (already listening: add no routes) */
  readonly app: FastifyInstance;
  /** Drains and stops the server (see the file comment); resolves when it has stopped. Safe to call twice. */
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<MnqServer> {
  const o = resolveOptions(options);
  const metrics = new ServerMetrics();
  const slots = new DecodeSlots(decodeConcurrency(o.threads, o.decoders));
  const served = new Map<string, ServedModel>();
  const disposeAll = (): void => {
    for (const m of served.values()) if (m.owned) m.model.dispose?.();
  };
  try {
    for (const [name, spec] of o.models) {
      const given = typeof spec.model === 'string' || spec.model instanceof Uint8Array ? null : spec.model;
      let model: ServableModel;
      try {
        model = given ?? await load(spec.model as string | Uint8Array, { threads: o.threads });
      } catch (e) {
        throw new Error(`model '${name}': ${(e as Error).message}`);
      }
      let m: ServedModel;
      try {
        m = new ServedModel(name, model, !given, {
          maxBatch: o.maxBatch, maxDelayMs: o.maxDelayMs, maxQueue: o.maxQueue, maxInFlight: o.maxInFlight,
          preprocess: spec.preprocess, labels: spec.labels, maxPixels: o.maxPixels,
        }, slots, metrics);
      } catch (e) {
        if (!given) model.dispose?.();
        throw e;
      }
      served.set(name, m);
      metrics.addModel(m);
    }
  } catch (e) {
    disposeAll();
    throw e;
  }

  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const version = (require('../../package.json') as { version: string }).version;
  const state: ServerState = { models: served, options: o, metrics, version, draining: false };
  const app = fastify({
    logger: o.logger,
    bodyLimit: o.bodyLimit,
    return503OnClosing: false, // the routes answer 503 with the { error } shape while draining
    forceCloseConnections: 'idle',
  });
  // bodies are read as bytes: images, and infer requests (JSON, or JSON + binary tensors) parsed by infer.ts
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', ...IMAGE_CONTENT_TYPES], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  await app.register(multipart, { limits: { fileSize: o.bodyLimit } });
  // requests in flight (from arrival to the response going out or the client going away) that arrived before
  // draining began: close() waits for them (those arriving later are answered 503 at once)
  let active = 0;
  let quiet: (() => void) | null = null;
  app.addHook('onRequest', async (_req, reply) => {
    if (state.draining) return;
    active++;
    reply.raw.once('close', () => {
      if (--active === 0 && quiet) quiet();
    });
  });
  registerRoutes(app, state);

  acquireSharp();
  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (e) {
    releaseSharp();
    disposeAll();
    await app.close().catch(() => undefined);
    throw e;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const host = o.host;

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      state.draining = true;
      for (const m of served.values()) m.batcher.drain();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, o.drainTimeoutMs); });
      try {
        if (active > 0) await Promise.race([new Promise<void>((resolve) => { quiet = resolve; }), timeout]);
        app.server.closeAllConnections(); // idle keep-alive connections, and any still busy after the timeout
        await app.close();
        await Promise.race([Promise.all([...served.values()].map((m) => m.batcher.idle())), timeout]);
      } finally {
        clearTimeout(timer);
        disposeAll();
        releaseSharp();
      }
    })();
    return closing;
  };

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    models: new Map([...served].map(([name, m]) => [name, { model: m.model, maxBatch: m.maxBatch, takesImages: !m.noImagesReason }])),
    app,
    close,
  };
}
