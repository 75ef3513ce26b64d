// The bytes of one image named by a job, under the worker's rules. A job is data from whoever can write
// to the queue, so a worker reads
//   - local paths (absolute, or relative to the root) and file:// URLs only inside --root, with symbolic links
//     resolved (realpath) and the opened file checked again (/proc/self/fd on Linux), regular files only;
//   - http:// and https:// URLs only from the hosts of --allow-host, following redirects by hand (at most
//     5), each hop checked again;
//   - at most --max-bytes bytes per image (checked against the size or Content-Length first, then while
//     reading), within --fetch-timeout milliseconds.
// Anything else is a FetchError whose message names the rule; the worker reports it as that image's error.
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import { fileURLToPath } from 'url';

export interface FetchRules {
  /** the directory local paths and file:// URLs must be inside; none: local files are refused */
  root?: string;
  /** hosts http(s) URLs may name: 'host' (any port) or 'host:port'; none: URLs are refused */
  allowHosts?: readonly string[];
  /** most bytes read per image */
  maxBytes: number;
  /** milliseconds for one image's fetch, redirects included */
  timeoutMs: number;
  /** most redirects followed (default 5) */
  maxRedirects?: number;
}

/** Why an image could not be read; `rule` is the worker option that refused it, if one did. */
export class FetchError extends Error {
  constructor(message: string, readonly rule?: string) {
    super(rule ? `refused by ${rule}: ${message}` : message);
    this.name = 'FetchError';
  }
}

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function isInside(file: string, dir: string): boolean {
  return file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

function errnoMessage(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message ?? String(e);
}

/** Reads images under a set of FetchRules. */
export class ImageFetcher {
  private readonly root?: string;
  private readonly hosts: readonly HostRule[];
  readonly rules: Readonly<FetchRules>;

  constructor(rules: FetchRules) {
    if (!Number.isInteger(rules.maxBytes) || rules.maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${rules.maxBytes}`);
    if (!(rules.timeoutMs > 0)) throw new RangeError(`timeoutMs must be a positive number, got ${rules.timeoutMs}`);
    this.rules = { ...rules, allowHosts: [...(rules.allowHosts ?? [])] };
    if (rules.root !== undefined) {
      let real: string;
      try {
        real = fs.realpathSync(rules.root);
      } catch (e) {
        throw new Error(`--root ${rules.root}: ${errnoMessage(e) === 'ENOENT' ? 'no such directory' : errnoMessage(e)}`);
      }
      if (!fs.statSync(real).isDirectory()) throw new Error(`--root ${rules.root}: not a directory`);
      this.root = real;
    }
    this.hosts = (rules.allowHosts ?? []).map(parseHostRule);
  }

  /** The bytes of the image `source` names, or a FetchError. */
  async fetch(source: string): Promise<Uint8Array> {
    if (URL_SCHEME.test(source)) {
      let url: URL;
      try {
        url = new URL(source);
      } catch {
        throw new FetchError(`not a valid URL: ${source}`);
      }
      if (url.protocol === 'file:') {
        let file: string;
        try {
          file = fileURLToPath(url);
        } catch (e) {
          throw new FetchError(`not a local file URL (${(e as Error).message})`);
        }
        return this.readLocal(file, source);
      }
      if (url.protocol === 'http:' || url.protocol === 'https:') return this.download(url);
      throw new FetchError(`unsupported URL scheme '${url.protocol}' (a job may name local paths, file://, http:// and https:// URLs)`);
    }
    return this.readLocal(source, source);
  }

  private async readLocal(file: string, shown: string): Promise<Uint8Array> {
    const root = this.root;
    if (root === undefined) throw new FetchError('local files are not read: the worker was started without --root', '--root');
    const abs = path.resolve(root, file);
    let real: string;
    try {
      real = await fs.promises.realpath(abs);
    } catch (e) {
      if (!isInside(abs, root)) throw new FetchError(`'${shown}' is outside ${root}`, '--root');
      throw new FetchError(errnoMessage(e) === 'ENOENT' ? 'file not found' : `cannot read file (${errnoMessage(e)})`);
    }
    if (!isInside(real, root)) {
      throw new FetchError(isInside(abs, root) ? `'${shown}' leads outside ${root} through a symbolic link` : `'${shown}' is outside ${root}`, '--root');
    }
    let handle: fs.promises.FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO must not hang (it is refused below as not a regular file)
      handle = await fs.promises.open(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      throw new FetchError(`cannot read file (${errnoMessage(e)})`);
    }
    try {
      // a path component swapped for a link between realpath() and open(): what was opened is what counts
      const opened = await openedPath(handle.fd);
      if (opened !== undefined && !isInside(opened, root)) throw new FetchError(`'${shown}' is outside ${root}`, '--root');
      const st = await handle.stat();
      if (!st.isFile()) throw new FetchError(st.isDirectory() ? 'is a directory, not an image file' : 'not a regular file');
      if (st.size === 0) throw new FetchError('empty file');
      const cap = this.rules.maxBytes;
      if (st.size > cap) throw new FetchError(`the file has ${st.size} bytes, more than ${cap}`, '--max-bytes');
      // read one byte more than the cap: a file growing past it is refused too
      const buf = Buffer.allocUnsafe(Math.min(st.size, cap) + 1);
      let n = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
        if (bytesRead === 0) break;
        n += bytesRead;
        if (n === buf.length) break;
      }
      if (n > cap) throw new FetchError(`the file has more than ${cap} bytes`, '--max-bytes');
      if (n === 0) throw new FetchError('empty file');
      return buf.subarray(0, n);
    } catch (e) {
      if (e instanceof FetchError) throw e;
      throw new FetchError(`cannot read file (${errnoMessage(e)})`);
    } finally {
      await handle.close();
    }
  }

  private checkHost(url: URL, via?: URL): void {
    const hostname = url.hostname.toLowerCase();
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    if (this.hosts.some((h) => h.hostname === hostname && (h.port === undefined || h.port === port))) return;
    const what = `host '${url.host}' is not allowed`;
    throw new FetchError(via ? `redirect from ${via.href} to ${url.href}: ${what}` : what, '--allow-host');
  }

  private async download(start: URL): Promise<Uint8Array> {
    this.checkHost(start);
    const { timeoutMs, maxBytes } = this.rules;
    const maxRedirects = this.rules.maxRedirects ?? 5;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      let url = start;
      for (let hop = 0; ; hop++) {
        const res = await get(url, controller.signal);
        const status = res.statusCode ?? 0;
        if (REDIRECTS.has(status)) {
          res.resume();
          const location = res.headers.location;
          if (!location) throw new FetchError(`HTTP ${status} redirect without a Location header from ${url.href}`);
          if (hop >= maxRedirects) throw new FetchError(`more than ${maxRedirects} redirects from ${start.href}`);
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            throw new FetchError(`HTTP ${status} redirect to an invalid URL '${location}'`);
          }
          if (next.protocol !== 'http:' && next.protocol !== 'https:') {
            throw new FetchError(`redirect from ${url.href} to ${next.protocol} (only http:// and https:// are followed)`, '--allow-host');
          }
          this.checkHost(next, url);
          url = next;
          continue;
        }
        if (status !== 200) {
          res.resume();
          throw new FetchError(`HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''} from ${url.href}`);
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          res.destroy();
          throw new FetchError(`${url.href} has ${declared} bytes (Content-Length), more than ${maxBytes}`, '--max-bytes');
        }
        const chunks: Buffer[] = [];
        let total = 0;
        for await (const chunk of res as AsyncIterable<Buffer>) {
          total += chunk.length;
          if (total > maxBytes) {
            res.destroy();
            throw new FetchError(`${url.href} sent more than ${maxBytes} bytes`, '--max-bytes');
          }
          chunks.push(chunk);
        }
        if (total === 0) throw new FetchError(`${url.href} sent no bytes`);
        return Buffer.concat(chunks, total);
      }
    } catch (e) {
      if (e instanceof FetchError) throw e;
      if (controller.signal.aborted) throw new FetchError(`no complete answer from ${start.href} within ${timeoutMs} ms (--fetch-timeout)`);
      throw new FetchError(`cannot download ${start.href} (${errnoMessage(e)})`);
    } finally {
      clearTimeout(timer);
    }
  }
}

interface HostRule { hostname: string; port?: string }

/** An --allow-host entry: 'host', 'host:port', '[v6]' or '[v6]:port' (case-insensitive). */
export function parseHostRule(entry: string): HostRule {
  const s = entry.trim().toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/.exec(s);
  if (!m || (m[2] !== undefined && Number(m[2]) > 65535)) {
    throw new Error(`--allow-host '${entry}' is not a host name or address with an optional :port`);
  }
  return { hostname: m[1], port: m[2] === undefined ? undefined : String(Number(m[2])) };
}

function get(url: URL, signal: AbortSignal): Promise<http.IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { signal, headers: { 'user-agent': 'mnq-worker', accept: 'image/*' } }, resolve);
    req.on('error', reject);
  });
}

/** The path an open file descriptor refers to (Linux), or undefined where /proc is not there. */
async function openedPath(fd: number): Promise<string | undefined> {
  try {
    return await fs.promises.readlink(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}
