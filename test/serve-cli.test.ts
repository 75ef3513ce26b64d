// `mnq serve` as a process: it prints where it listens, serves, and on SIGTERM stops accepting, answers the
// request in flight (here one whose body is still arriving when the signal comes) and exits 0.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { tinyConvModel } from './helpers/tiny-models';
import { REPO_ROOT } from './helpers/shared';

/** Runs lib/cli/serve.ts in a child process (TypeScript transpiled on load). */
function serve(args: string[]): { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [
    '-r', path.join(__dirname, 'helpers', 'ts-register.js'),
    '-e', "require('./lib/cli/serve').run(process.argv.slice(1)).then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 1; })",
    '--', ...args,
  ], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => { out += d; });
  child.stderr?.on('data', (d) => { err += d; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('mnq serve (child process)', () => {
  let dir: string;
  let modelFile: string;
  let png: Buffer;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-serve-'));
    modelFile = path.join(dir, 'tiny.onnx');
    fs.writeFileSync(modelFile, tinyConvModel());
    const px = Buffer.alloc(8 * 8 * 3, 0);
    for (let i = 0; i < px.length; i++) px[i] = (i * 53) & 255;
    png = await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('SIGTERM: the request in flight is answered, new connections are refused, exit code 0', async () => {
    const p = serve(['--model', `tiny=${modelFile}`, '--port', '0', '--threads', '1']);
    try {
      // (the model's line is a write of its own after the listening line: wait for both)
      await until('the listening and model lines', () => /listening on http:\/\/127\.0\.0\.1:\d+\n[^]*\(max batch/.test(p.out()));
      const url = (/listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(p.out()) as RegExpExecArray)[1];
      expect(p.out()).toContain(`tiny: ${url}/v2/models/tiny, ${url}/v1/models/tiny:classify (max batch 32)`);
      expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);

      // a request whose body is half sent when SIGTERM arrives
      const { port } = new URL(url);
      let answer = '';
      let status = 0;
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/models/tiny:classify?top=1', headers: { 'content-type': 'image/png', 'content-length': png.length } });
      const done = new Promise<void>((resolve, reject) => {
        req.on('response', (res) => {
          status = res.statusCode ?? 0;
          res.on('data', (d) => { answer += d; });
          res.on('end', () => resolve());
        });
        req.on('error', reject);
      });
      req.write(png.subarray(0, 20));
      await new Promise((r) => setTimeout(r, 200));
      p.child.kill('SIGTERM');
      await until('the draining line', () => /SIGTERM: draining/.test(p.err()));
      await new Promise((r) => setTimeout(r, 200));
      req.end(png.subarray(20));
      await done;
      expect(status).toBe(200);
      expect(JSON.parse(answer)).toEqual({ model: 'tiny', predictions: [expect.objectContaining({ label: expect.stringMatching(/^class \d$/) })] });
      expect(await p.exit).toBe(0);
      expect(p.err()).toMatch(/mnq serve: stopped\n$/);
      await expect(fetch(`${url}/v2/health/live`)).rejects.toThrow();
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  test('a model that cannot be loaded: a message naming it, exit code 1', async () => {
    fs.writeFileSync(path.join(dir, 'broken.onnx'), 'not an onnx file');
    const p = serve(['--model', path.join(dir, 'broken.onnx'), '--port', '0']);
    expect(await p.exit).toBe(1);
    expect(p.err()).toMatch(/model 'broken': /);
    expect(p.out()).toBe('');
  });
});
