// `mnq serve` as an API: an inference server with dynamic batching, the Open Inference Protocol (KServe v2),
// an image classification endpoint, Prometheus metrics and back-pressure (docs/serve.md).
//
//   import { createServer } from 'mnq';
//   const server = await createServer({ models: { mobilenet: 'mobilenet.int8.onnx' }, port: 8080, threads: 2 });
//   // ... POST images to `${server.url}/v1/models/mobilenet:classify`
//   await server.close();   // drains: requests in flight are answered first
import type { MnqServer } from './server';
import type { ServeOptions } from './options';
import { checkInstalled } from '../optional-dependencies';

export type { MnqServer } from './server';
export type { ServeOptions, ServeModelSpec } from './options';
export type { ServableModel } from './served-model';

/** Loads the models and starts the server; resolves once it listens. */
export function createServer(options: ServeOptions): Promise<MnqServer> {
  // loaded on first use: fastify, @fastify/multipart and prom-client are optional dependencies, only needed by
  // programs that serve
  checkInstalled(['fastify', '@fastify/multipart', 'prom-client']);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { startServer } = require('./server') as typeof import('./server');
  return startServer(options);
}
