// Locates and loads the native addon (a prebuilt binary of this platform, else the local build
// build/Release/mnq.node: scripts/addon-location.js has the order) and describes its interface.
// The addon is a thin binding over native/runtime: it reads the plan
// (lib/plan.ts) field by field (types), the runtime validates it, lays out its
// memory and packs its weights, and runs it off the main thread.
import * as fs from 'fs';
import * as path from 'path';
import type { PlanDesc } from './plan';
import { addonCandidates, buildHelp, targetName, currentTarget } from '../scripts/addon-location';

export type IsaName = 'scalar' | 'avx2' | 'avxvnni' | 'avx512vnni' | 'neon' | 'neondot';

/** The most threads one native model may use (the addon refuses more). */
export const MAX_THREADS = 256;

export interface NativeModelOptions {
  /** Threads that may compute at once for this model (the caller's thread included); default 1. */
  threads?: number;
  /** Kernel ISA; default: defaultIsa() (MNQ_ISA if set, else the best this CPU supports). */
  isa?: IsaName;
  /** How steps run: 'fused' (inverted residual blocks and other chains over bands of rows, their inner tensors
   * never laid out) or 'layers' (each step over whole tensors); default MNQ_EXECUTOR, else 'fused'. */
  executor?: ExecutorName;
}

export type ExecutorName = 'fused' | 'layers';

/**
 * A compiled plan. Inputs are copied before a run starts and never modified.
 * Each output i is int8 NHWC [batch][h][w][c] of plan tensor plan.outputs[i].
 * `batch` may be omitted: it is then input.length / (one image's elements).
 */
export interface NativeModel {
  readonly isa: IsaName;
  readonly threads: number;
  readonly disposed: boolean;
  /** Bytes of one image's activation arena region, laid out by the runtime (a run holds min(batch, threads) regions). */
  readonly arenaBytesPerImage: number;
  /** Bytes of the packed weights (every byte the packed convolutions hold). */
  readonly weightBytes: number;
  /** Bytes of the fused groups' row windows one computing thread holds (0 with the 'layers' executor). */
  readonly windowBytesPerThread: number;
  readonly executor: ExecutorName;
  /** How many fused groups the model runs (0 with the 'layers' executor). */
  readonly fusedGroups: number;
  /**
   * Float input in the plan's inputLayout, [batch][c][h][w] (NCHW) or [batch][h][w][c] (NHWC), quantized
   * with the plan input's scale / zero point.
   */
  run(input: Float32Array, batch?: number): Promise<Int8Array[]>;
  runSync(input: Float32Array, batch?: number): Int8Array[];
  /** int8 NHWC input [batch][h][w][c], already quantized with the plan input's scale / zero point. */
  runInt8(input: Int8Array, batch?: number): Promise<Int8Array[]>;
  runInt8Sync(input: Int8Array, batch?: number): Int8Array[];
  /** Releases the model; runs already started finish normally, later calls throw. */
  dispose(): void;
}

export interface NativeAddon {
  /**
   * Validates the plan, lays out its arena and packs its weights on a libuv worker
   * thread (the event loop is not blocked). The plan's arrays are copied before
   * the call returns: the plan is not kept or modified. Type errors in the plan or options throw at once;
   * inconsistent plans reject with an Error naming the op and field.
   */
  createModel(plan: PlanDesc, options?: NativeModelOptions): Promise<NativeModel>;
  /** createModel on the calling thread. */
  createModelSync(plan: PlanDesc, options?: NativeModelOptions): NativeModel;
  /** ISAs this build and CPU support, scalar first. */
  supportedIsas(): IsaName[];
  /** MNQ_ISA if set (throws if unknown or unsupported), else the best supported ISA. */
  defaultIsa(): IsaName;
}

const packageRoot = path.resolve(__dirname, '..');

let cached: { addon: NativeAddon; file: string } | undefined;

/**
 * Loads the addon once per thread (it is context-aware, so worker_threads load their own): MNQ_ADDON if set,
 * else this platform's prebuilt binary, else the local build; the first that exists and loads. None: an Error
 * saying what to install to build it.
 */
export function loadNative(): NativeAddon {
  if (cached) return cached.addon;
  const { list, skipped } = addonCandidates(packageRoot);
  const failures: string[] = [];
  for (const { file, kind } of list) {
    if (!fs.existsSync(file)) {
      failures.push(kind === 'MNQ_ADDON' ? `MNQ_ADDON=${file} does not exist` : `no ${kind} (${file})`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = { addon: require(file) as NativeAddon, file };
      return cached.addon;
    } catch (e) {
      failures.push(`the ${kind} ${file} does not load: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (list[0].kind === 'MNQ_ADDON') throw new Error(`mnq: ${failures[0]}`);
  const t = currentTarget();
  throw new Error([
    `mnq: no native addon loads on ${targetName(t)} (Node ${process.version}, ${packageRoot}):`,
    ...[skipped, ...failures].filter(Boolean).map((l) => `  - ${l}`),
    buildHelp(),
  ].join('\n'));
}

/** The file loadNative() loaded (loading it if needed). */
export function addonPath(): string {
  loadNative();
  return cached!.file;
}
