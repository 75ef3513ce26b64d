// The worker's rules for reading the images a job names (lib/queue/fetch-image.ts): local files only inside
// --root (symbolic links resolved), URLs only from --allow-host hosts (each redirect hop checked again), a byte
// cap while reading, a timeout. Every refusal names its rule. HTTP servers here listen on 127.0.0.1 only.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { FetchError, ImageFetcher, parseHostRule } from '../lib/queue/fetch-image';

let tmp: string;
let root: string;
const bytes = Buffer.from('not really an image, but bytes are bytes here');

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
interface Server { host: string; url(p: string): string; hits: string[]; close(): Promise<void> }
const servers: Server[] = [];

async function server(handler: Handler): Promise<Server> {
  const hits: string[] = [];
  const s = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  const out: Server = {
    host: `127.0.0.1:${port}`,
    url: (p) => `http://127.0.0.1:${port}${p}`,
    hits,
    close: () => new Promise<void>((r) => {
      s.closeAllConnections();
      s.close(() => r());
    }),
  };
  servers.push(out);
  return out;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-fetch-'));
  root = path.join(tmp, 'root');
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'a.jpg'), bytes);
  fs.writeFileSync(path.join(root, 'sub', 'b.jpg'), bytes);
  fs.writeFileSync(path.join(root, 'empty.jpg'), '');
  fs.writeFileSync(path.join(tmp, 'secret.txt'), 'outside the root');
  fs.symlinkSync(path.join(tmp, 'secret.txt'), path.join(root, 'escape.jpg'));
  fs.symlinkSync(path.join(root, 'sub', 'b.jpg'), path.join(root, 'inside-link.jpg'));
  fs.symlinkSync(tmp, path.join(root, 'up'));
  fs.mkdirSync(path.join(tmp, 'root-sibling'));
  fs.writeFileSync(path.join(tmp, 'root-sibling', 'c.jpg'), bytes);
  execFileSync('mkfifo', [path.join(root, 'fifo.jpg')]);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The FetchError message of fetching `source`. */
async function refusal(f: ImageFetcher, source: string): Promise<string> {
  try {
    await f.fetch(source);
  } catch (e) {
    expect(e).toBeInstanceOf(FetchError);
    return (e as Error).message;
  }
  throw new Error(`${source} was read`);
}

const rules = { maxBytes: 1000, timeoutMs: 5000 };

describe('local files: only inside --root', () => {
  test('files inside the root, by absolute path, relative path, file:// URL and a link that stays inside', async () => {
    const f = new ImageFetcher({ ...rules, root });
    expect(Buffer.from(await f.fetch(path.join(root, 'a.jpg')))).toEqual(bytes);
    expect(Buffer.from(await f.fetch('sub/b.jpg'))).toEqual(bytes);
    expect(Buffer.from(await f.fetch(pathToFileURL(path.join(root, 'sub', 'b.jpg')).href))).toEqual(bytes);
    expect(Buffer.from(await f.fetch(path.join(root, 'inside-link.jpg')))).toEqual(bytes);
    // the root given through a link or with a trailing slash is the same root
    const viaLink = new ImageFetcher({ ...rules, root: path.join(root, 'up', 'root') + '/' });
    expect(Buffer.from(await viaLink.fetch(path.join(root, 'a.jpg')))).toEqual(bytes);
  });

  test('paths outside the root, however written, are refused by --root', async () => {
    const f = new ImageFetcher({ ...rules, root });
    const outside = `refused by --root: '${path.join(tmp, 'secret.txt')}' is outside ${fs.realpathSync(root)}`;
    expect(await refusal(f, path.join(tmp, 'secret.txt'))).toBe(outside);
    expect(await refusal(f, '../secret.txt')).toBe(`refused by --root: '../secret.txt' is outside ${fs.realpathSync(root)}`);
    expect(await refusal(f, path.join(root, 'sub', '..', '..', 'secret.txt'))).toMatch(/^refused by --root: .* is outside /);
    expect(await refusal(f, pathToFileURL(path.join(tmp, 'secret.txt')).href)).toMatch(/^refused by --root: 'file:.*secret.txt' is outside /);
    // a sibling whose name starts with the root's name is not inside it
    expect(await refusal(f, path.join(tmp, 'root-sibling', 'c.jpg'))).toMatch(/^refused by --root: .* is outside /);
    // links are resolved: a link inside the root to a file outside it is refused, and so is a path through one
    expect(await refusal(f, path.join(root, 'escape.jpg'))).toMatch(/^refused by --root: '.*escape.jpg' leads outside .* through a symbolic link$/);
    expect(await refusal(f, path.join(root, 'up', 'secret.txt'))).toMatch(/^refused by --root: .* through a symbolic link$/);
    expect(await refusal(f, '/etc/passwd')).toMatch(/^refused by --root: '\/etc\/passwd' is outside /);
    // an outside path that does not exist says it is outside, not whether it exists
    expect(await refusal(f, path.join(tmp, 'nothing.jpg'))).toMatch(/^refused by --root: .* is outside /);
  });

  test('without --root no local file is read', async () => {
    const f = new ImageFetcher({ ...rules, allowHosts: ['127.0.0.1'] });
    const msg = 'refused by --root: local files are not read: the worker was started without --root';
    expect(await refusal(f, path.join(root, 'a.jpg'))).toBe(msg);
    expect(await refusal(f, pathToFileURL(path.join(root, 'a.jpg')).href)).toBe(msg);
  });

  test('not a regular file, missing, empty', async () => {
    const f = new ImageFetcher({ ...rules, root });
    expect(await refusal(f, path.join(root, 'sub'))).toBe('is a directory, not an image file');
    expect(await refusal(f, path.join(root, 'fifo.jpg'))).toBe('not a regular file'); // and does not hang
    expect(await refusal(f, path.join(root, 'missing.jpg'))).toBe('file not found');
    expect(await refusal(f, path.join(root, 'empty.jpg'))).toBe('empty file');
  });

  test('the byte cap (--max-bytes)', async () => {
    const f = new ImageFetcher({ ...rules, root, maxBytes: bytes.length - 1 });
    expect(await refusal(f, path.join(root, 'a.jpg'))).toBe(`refused by --max-bytes: the file has ${bytes.length} bytes, more than ${bytes.length - 1}`);
    const exact = new ImageFetcher({ ...rules, root, maxBytes: bytes.length });
    expect((await exact.fetch(path.join(root, 'a.jpg'))).length).toBe(bytes.length);
  });

  test('a root that is not a directory is an error at start', () => {
    expect(() => new ImageFetcher({ ...rules, root: path.join(tmp, 'nope') })).toThrow(/--root .*nope: no such directory/);
    expect(() => new ImageFetcher({ ...rules, root: path.join(tmp, 'secret.txt') })).toThrow(/not a directory/);
  });
});

describe('URLs: only from --allow-host hosts', () => {
  test('an allowed host is fetched; other hosts and schemes are refused without a request', async () => {
    const s = await server((req, res) => res.end(bytes));
    const f = new ImageFetcher({ ...rules, allowHosts: [s.host] });
    expect(Buffer.from(await f.fetch(s.url('/x.jpg')))).toEqual(bytes);
    expect(s.hits).toEqual(['/x.jpg']);
    expect(await refusal(f, 'http://127.0.0.2:9/x.jpg')).toBe("refused by --allow-host: host '127.0.0.2:9' is not allowed");
    expect(await refusal(f, 'http://localhost' + s.url('/y').slice('http://127.0.0.1'.length))).toMatch(/^refused by --allow-host: host 'localhost:\d+' is not allowed$/);
    expect(await refusal(f, 'ftp://example.com/x.jpg')).toBe("unsupported URL scheme 'ftp:' (a job may name local paths, file://, http:// and https:// URLs)");
    expect(await refusal(f, 'data:image/png;base64,AAAA')).toMatch(/^unsupported URL scheme 'data:'/);
    expect(s.hits).toEqual(['/x.jpg']);
    // a host without a port allows any port; with a port, only that one
    expect((await new ImageFetcher({ ...rules, allowHosts: ['127.0.0.1'] }).fetch(s.url('/z'))).length).toBe(bytes.length);
    const otherPort = new ImageFetcher({ ...rules, allowHosts: ['127.0.0.1:1'] });
    expect(await refusal(otherPort, s.url('/z'))).toMatch(/^refused by --allow-host: host '127.0.0.1:\d+' is not allowed$/);
    // without --allow-host no URL is fetched
    expect(await refusal(new ImageFetcher({ ...rules, root }), s.url('/x.jpg'))).toMatch(/^refused by --allow-host:/);
  });

  test('redirects are followed only to allowed hosts, each hop checked', async () => {
    const other = await server((req, res) => res.end(bytes)); // not allowed
    const s = await server((req, res) => {
      const to: Record<string, string> = {
        '/to-self': '/final', '/to-other': other.url('/stolen'), '/to-file': 'file:///etc/passwd',
        '/chain1': '/chain2', '/chain2': other.url('/stolen2'), '/loop': '/loop', '/no-location': '',
      };
      if (req.url === '/final') res.end(bytes);
      else if (req.url && req.url in to) {
        res.writeHead(req.url === '/to-self' ? 301 : 302, to[req.url] ? { location: to[req.url] } : {});
        res.end();
      } else res.writeHead(404).end();
    });
    const f = new ImageFetcher({ ...rules, allowHosts: [s.host] });
    expect(Buffer.from(await f.fetch(s.url('/to-self')))).toEqual(bytes);
    expect(await refusal(f, s.url('/to-other'))).toBe(`refused by --allow-host: redirect from ${s.url('/to-other')} to ${other.url('/stolen')}: host '${other.host}' is not allowed`);
    expect(await refusal(f, s.url('/chain1'))).toMatch(/^refused by --allow-host: redirect from .*\/chain2 to .*\/stolen2: host .* is not allowed$/);
    expect(await refusal(f, s.url('/to-file'))).toBe(`refused by --allow-host: redirect from ${s.url('/to-file')} to file: (only http:// and https:// are followed)`);
    expect(other.hits).toEqual([]); // the disallowed host never saw a request
    expect(await refusal(f, s.url('/loop'))).toBe(`more than 5 redirects from ${s.url('/loop')}`);
    expect(await refusal(f, s.url('/no-location'))).toBe(`HTTP 302 redirect without a Location header from ${s.url('/no-location')}`);
    expect(await refusal(f, s.url('/missing'))).toBe(`HTTP 404 Not Found from ${s.url('/missing')}`);
  });

  test('the byte cap: from Content-Length, and while streaming when there is none', async () => {
    const big = Buffer.alloc(5000, 7);
    const s = await server((req, res) => {
      if (req.url === '/declared') res.end(big);
      else {
        // chunked, no Content-Length
        res.write(big.subarray(0, 2500));
        setTimeout(() => res.end(big.subarray(2500)), 20);
      }
    });
    const f = new ImageFetcher({ ...rules, maxBytes: 4000, allowHosts: [s.host] });
    expect(await refusal(f, s.url('/declared'))).toBe(`refused by --max-bytes: ${s.url('/declared')} has 5000 bytes (Content-Length), more than 4000`);
    expect(await refusal(f, s.url('/streamed'))).toBe(`refused by --max-bytes: ${s.url('/streamed')} sent more than 4000 bytes`);
    const enough = new ImageFetcher({ ...rules, maxBytes: 5000, allowHosts: [s.host] });
    expect((await enough.fetch(s.url('/streamed'))).length).toBe(5000);
  });

  test('a server that does not answer in time (--fetch-timeout)', async () => {
    const s = await server((req, res) => {
      res.writeHead(200);
      res.write('partial'); // then nothing more
    });
    const f = new ImageFetcher({ maxBytes: 1000, timeoutMs: 300, allowHosts: [s.host] });
    const t0 = Date.now();
    expect(await refusal(f, s.url('/slow'))).toBe(`no complete answer from ${s.url('/slow')} within 300 ms (--fetch-timeout)`);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('--allow-host entries', () => {
    expect(parseHostRule('Example.COM')).toEqual({ hostname: 'example.com', port: undefined });
    expect(parseHostRule('images.example.com:8080')).toEqual({ hostname: 'images.example.com', port: '8080' });
    expect(parseHostRule('[::1]:443')).toEqual({ hostname: '[::1]', port: '443' });
    for (const bad of ['http://example.com', 'a b', 'host:99999', 'host:', '', 'user@host']) {
      expect(() => parseHostRule(bad)).toThrow(`--allow-host '${bad}' is not a host name or address with an optional :port`);
    }
  });
});
