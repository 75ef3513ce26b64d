// `mnq fetch <name>... [--from DIR] [--dir DIR] [--force] [--list]`: get a known model (models/manifest.json)
// by downloading it or copying it from a local mirror directory, verifying its sha256. The file appears
// under its final name only once verified: on any error nothing is left behind.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs, reportUsageError } from './args';

export const summary = 'download (or copy from a mirror directory) a known model and verify its sha256';

/** One known model. */
export interface ManifestEntry {
  name: string;
  file: string;
  architecture: string;
  widthMultiplier?: number;
  /** [channels, height, width] */
  input: number[];
  /** 'int8-qdq' | 'int8-qoperator' | 'float' */
  format: string;
  classes: number;
  /** preprocessing name or JSON spec (see lib/preprocess-spec.ts) */
  preprocess: string;
  /** label set name or the labels themselves */
  labels: string | string[];
  url: string | null;
  sha256: string;
  bytes?: number;
  license: string;
  description?: string;
  /** where the model was derived from */
  original?: string;
}

export interface Manifest { version: number; models: ManifestEntry[] }

/** models/manifest.json of the package (lib/cli/ and dist/cli/ are both two levels below the root). */
export const MANIFEST_PATH = path.resolve(__dirname, '..', '..', 'models', 'manifest.json');

/** Where fetched models go by default: $MNQ_MODELS, else $XDG_CACHE_HOME/mnq/models, else ~/.cache/mnq/models. */
export function defaultModelDir(): string {
  if (process.env.MNQ_MODELS) return path.resolve(process.env.MNQ_MODELS);
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'mnq', 'models');
}

export function loadManifest(file = MANIFEST_PATH): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(`cannot read model manifest '${file}': ${(e as Error).message}`);
  }
  if (!m || !Array.isArray(m.models)) throw new Error(`model manifest '${file}' has no 'models' list`);
  for (const e of m.models) {
    if (!e.name || !e.file || !/^[0-9a-f]{64}$/.test(e.sha256 ?? '')) {
      throw new Error(`model manifest '${file}': entry ${JSON.stringify(e.name)} needs name, file and a 64-hex-digit sha256`);
    }
    if (path.basename(e.file) !== e.file) throw new Error(`model manifest '${file}': file of '${e.name}' must be a plain file name`);
  }
  return m;
}

/** The entry named `name` (or whose file is `name`); throws listing the known names otherwise. */
export function findModel(manifest: Manifest, name: string): ManifestEntry {
  const e = manifest.models.find((m) => m.name === name || m.file === name);
  if (!e) {
    throw new Error(`unknown model '${name}'. Known models: ${manifest.models.map((m) => m.name).join(', ')}`);
  }
  return e;
}

/** The entry whose sha256 is `sha`, if any. */
export function findModelBySha(manifest: Manifest, sha: string): ManifestEntry | undefined {
  return manifest.models.find((m) => m.sha256 === sha);
}

export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface FetchOptions {
  /** copy from this local mirror directory instead of downloading */
  from?: string;
  /** where to put the model (default defaultModelDir()) */
  dir?: string;
  /** fetch again even if a verified copy is present */
  force?: boolean;
  /** manifest to use (default models/manifest.json) */
  manifest?: Manifest;
  /** progress: bytes so far, total if known */
  onProgress?: (bytes: number, total?: number) => void;
}

export interface FetchResult { path: string; entry: ManifestEntry; status: 'present' | 'copied' | 'downloaded' }

/** Streams `source` into a temporary file next to `dest`, hashing it; renames it to `dest` only if the hash is right. */
async function writeVerified(
  source: AsyncIterable<Uint8Array>, dest: string, entry: ManifestEntry, what: string, onProgress?: FetchOptions['onProgress'],
): Promise<void> {
  const tmp = `${dest}.part-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const h = crypto.createHash('sha256');
  let bytes = 0;
  let fd: fs.promises.FileHandle | undefined;
  try {
    fd = await fs.promises.open(tmp, 'wx');
    for await (const chunk of source) {
      h.update(chunk);
      await fd.write(chunk);
      bytes += chunk.length;
      onProgress?.(bytes, entry.bytes);
    }
    await fd.close();
    fd = undefined;
    const got = h.digest('hex');
    if (got !== entry.sha256) {
      throw new Error(`checksum mismatch for '${entry.name}' from ${what}: expected sha256 ${entry.sha256}, got ${got} (${bytes} bytes); nothing was saved`);
    }
    await fs.promises.rename(tmp, dest);
  } catch (e) {
    if (fd) await fd.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

async function* httpBody(url: string): AsyncIterable<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (e) {
    const cause = (e as { cause?: Error }).cause;
    throw new Error(`cannot download ${url}: ${cause?.message ?? (e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new Error(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`);
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    if (value) yield value;
  }
}

/** Gets a known model into `dir` (verified), from a mirror directory or its URL. */
export async function fetchModel(name: string, options: FetchOptions = {}): Promise<FetchResult> {
  const manifest = options.manifest ?? loadManifest();
  const entry = findModel(manifest, name);
  const dir = path.resolve(options.dir ?? defaultModelDir());
  const dest = path.join(dir, entry.file);
  if (!options.force && fs.existsSync(dest) && (await sha256File(dest)) === entry.sha256) {
    return { path: dest, entry, status: 'present' };
  }
  if (options.from && !fs.statSync(options.from, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`mirror directory '${options.from}' ${fs.existsSync(options.from) ? 'is not a directory' : 'does not exist'}`);
  }
  await fs.promises.mkdir(dir, { recursive: true });
  if (options.from) {
    const candidates = [entry.file, entry.url ? path.basename(new URL(entry.url).pathname) : ''].filter(Boolean);
    const src = candidates.map((f) => path.join(options.from as string, f)).find((f) => fs.existsSync(f));
    if (!src) throw new Error(`'${entry.file}' not found in mirror directory '${options.from}'`);
    if (path.resolve(src) === dest) throw new Error(`mirror directory and destination are the same file: ${dest}`);
    await writeVerified(fs.createReadStream(src), dest, entry, src, options.onProgress);
    return { path: dest, entry, status: 'copied' };
  }
  if (!entry.url) {
    throw new Error(`model '${entry.name}' has no public download URL${entry.original ? ` (it was derived from ${entry.original})` : ''}: copy it from a directory that has it with --from DIR`);
  }
  await writeVerified(httpBody(entry.url), dest, entry, entry.url, options.onProgress);
  return { path: dest, entry, status: 'downloaded' };
}

/**
 * A --model argument: an existing file path, or the name of a known model already fetched into the model
 * directory. Throws a clear Error (suggesting `mnq fetch`) otherwise.
 */
export function resolveModelPath(arg: string, dir = defaultModelDir()): string {
  if (fs.existsSync(arg)) return arg;
  let manifest: Manifest | undefined;
  try {
    manifest = loadManifest();
  } catch {
    manifest = undefined;
  }
  const entry = manifest?.models.find((m) => m.name === arg || m.file === arg);
  if (entry) {
    const p = path.join(dir, entry.file);
    if (fs.existsSync(p)) return p;
    throw new Error(`model '${arg}' is not fetched yet: run 'mnq fetch ${entry.name}' (or give a path to the .onnx file)`);
  }
  throw new Error(`model file '${arg}' not found (and it is not a known model name: see 'mnq fetch --list')`);
}

const HELP = `usage: mnq fetch <name>... [--from DIR] [--dir DIR] [--force]
       mnq fetch --list [--json]

Gets known models (models/manifest.json) and verifies their sha256.
  --from DIR   copy from a local mirror directory instead of downloading (offline machines)
  --dir DIR    where to put them (default: $MNQ_MODELS or ~/.cache/mnq/models; now ${defaultModelDir()})
  --force      fetch again even if a verified copy is present
  --list       list the known models
  --json       with --list: the manifest entries as JSON Lines`;

const FLAGS = {
  from: { type: 'string' }, dir: { type: 'string' }, force: { type: 'boolean' }, list: { type: 'boolean' }, json: { type: 'boolean' },
} as const;

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv, FLAGS);
  } catch (e) {
    return reportUsageError('fetch', e, HELP);
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const positionals = args.positional;
  const manifest = loadManifest();
  if (args.bool('list')) {
    for (const m of manifest.models) {
      if (args.bool('json')) console.log(JSON.stringify(m));
      else console.log(`${m.name.padEnd(42)} ${m.format.padEnd(15)} ${String(m.classes).padStart(5)} classes  ${m.url ? 'download' : 'mirror only'}  ${m.license}`);
    }
    return 0;
  }
  if (positionals.length === 0) {
    console.error(`mnq fetch: name a model to fetch\n\n${HELP}`);
    return 2;
  }
  let failed = 0;
  for (const name of positionals) {
    try {
      const tty = process.stderr.isTTY;
      const r = await fetchModel(name, {
        from: args.string('from'), dir: args.string('dir'), force: args.bool('force'), manifest,
        onProgress: tty ? (b, t) => process.stderr.write(`\r${name}: ${(b / 1e6).toFixed(1)}${t ? ` / ${(t / 1e6).toFixed(1)}` : ''} MB`) : undefined,
      });
      if (tty && r.status !== 'present') process.stderr.write('\n');
      console.log(`${r.entry.name}: ${r.status === 'present' ? 'already present' : r.status}, sha256 ok: ${r.path}`);
    } catch (e) {
      failed++;
      console.error(`mnq fetch: ${(e as Error).message}`);
    }
  }
  return failed ? 1 : 0;
}
