// How images decode alongside a model's threads: the one rule for `classify` and `mnq serve`. sharp decodes on
// libuv's thread pool, which also carries the models' async runs, on the same cores as the model's threads.
import * as os from 'os';
import { loadSharp } from './sharp';

function cpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * How many images decode at once, sized with the model's threads: while a model run is in flight, the cores
 * its threads leave free (at least 1); while none is, every core. Both stay below libuv's thread pool size,
 * so a model run never waits behind queued decodes. `decoders` fixes both.
 */
export function decodeConcurrency(modelThreads: number | undefined, decoders?: number): { busy: number; idle: number } {
  if (decoders !== undefined) return { busy: decoders, idle: decoders };
  const cores = cpuCount();
  const uvPool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const cap = Math.max(1, uvPool - 1);
  const busy = Math.max(1, Math.min(cores - (modelThreads ?? cores), cap));
  const idle = Math.max(busy, Math.min(cores, cap));
  return { busy, idle };
}

// sharp's libvips threads per image: 1 while any user (a classify call, a server) holds it, as many images
// decode in parallel instead, so decoders + model threads ≈ cores; restored when the last user releases it.
// One count per process, shared by every user.
let sharpUsers = 0;
let sharpSaved = 0;
export function acquireSharp(): void {
  if (sharpUsers++ === 0) {
    const sharp = loadSharp();
    sharpSaved = sharp.concurrency();
    sharp.concurrency(1);
  }
}
export function releaseSharp(): void {
  if (sharpUsers > 0 && --sharpUsers === 0) loadSharp().concurrency(sharpSaved);
}
