/**
 * @jest-environment ./test/helpers/node-env.js
 */
// `mnq serve` over HTTP (createServer on 127.0.0.1, an ephemeral port): every endpoint and error path, batching
// that coalesces, back-pressure (429 at once), timeouts and client aborts cancelling queued work, draining on
// close(), results equal to model.run / model.classify. A tiny synthetic int8 model covers everything without
// ../shared; with it, a real MobileNetV2 is served and checked against model.classify on real images.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import sharp from 'sharp';
import { createServer, load, Model, MnqServer, ServableModel, ServeOptions } from '../lib/index';
import { tinyConvModel, tinyHeadModel } from './helpers/tiny-models';
import { describeShared, sharedPath } from './helpers/shared';
import { testImages } from './helpers/images';

const TINY = tinyConvModel(); // input [N, 3, 5, 5], output [N, 4]
const HOST = '127.0.0.1';

// ------------------------------------------------------------------------------------------ helpers

/** An encoded test image (deterministic pixels). */
async function encode(format: 'png' | 'jpeg' | 'webp', seed: number, width = 16, height = 12): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37 + seed * 101 + ((i * i) >> 3)) & 255;
  const img = sharp(px, { raw: { width, height, channels: 3 } });
  return (format === 'png' ? img.png() : format === 'jpeg' ? img.jpeg({ quality: 90 }) : img.webp({ lossless: true })).toBuffer();
}

const TYPES = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' } as const;

async function postImage(server: MnqServer, model: string, body: Uint8Array | string, type: string, query = '', init: RequestInit = {}): Promise<Response> {
  return fetch(`${server.url}/v1/models/${model}:classify${query}`, { method: 'POST', body, headers: { 'content-type': type }, ...init });
}

async function postInfer(server: MnqServer, model: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Response> {
  return fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body), headers });
}

async function json(r: Response): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (status ${r.status}): ${text.slice(0, 200)}`);
  }
}

/** The value of one Prometheus sample, e.g. metric(s, 'mnq_batches_total{model="tiny"}'); 0 when absent. */
async function metric(server: MnqServer, sample: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The real model, whose runs wait while the test holds them; `runs` lists each run's batch size. */
function gated(model: Model): ServableModel & { runs: number[]; hold(): void; release(): void } {
  let gate: Promise<void> = Promise.resolve();
  let open = (): void => undefined;
  const runs: number[] = [];
  return {
    inputs: model.inputs, outputs: model.outputs, inputQuantization: model.inputQuantization, metadata: model.metadata,
    threads: model.threads, isa: model.isa, runs,
    async run(x, shape) {
      runs.push((shape as number[])[0]);
      await gate;
      return model.run(x, shape);
    },
    async runInt8(x, n) {
      runs.push(n);
      await gate;
      return model.runInt8(x, n);
    },
    hold() {
      gate = new Promise((r) => { open = r; });
    },
    release() {
      open();
    },
  };
}

/** Raw HTTP/1.1 requests on one keep-alive connection; resolves to the status lines and bodies seen. */
function oneConnection(port: number, requests: (Buffer | string)[], waitMs = 1500): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, HOST);
    let text = '';
    let closed = false;
    s.on('data', (d) => { text += d.toString('latin1'); });
    s.on('close', () => { closed = true; });
    s.on('error', reject);
    for (const r of requests) s.write(r);
    setTimeout(() => {
      s.destroy();
      resolve({ text, closed });
    }, waitMs);
  });
}

function rawPost(pathname: string, type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`POST ${pathname} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
}

/** A request whose body arrives in two steps: the headers and `first` bytes now, the rest at finish(). */
function slowUpload(port: number, request: Buffer, first: number): { finish(): Promise<string>; abort(): void } {
  const s = net.connect(port, HOST);
  let text = '';
  s.on('data', (d) => { text += d.toString('latin1'); });
  s.on('error', () => undefined); // (abort)
  const head = request.indexOf('\r\n\r\n') + 4;
  s.write(request.subarray(0, head + first));
  /** the answer is whole once its body has its Content-Length */
  const whole = (): boolean => {
    const end = text.indexOf('\r\n\r\n');
    const length = /content-length: (\d+)/i.exec(text);
    return end >= 0 && length !== null && text.length >= end + 4 + Number(length[1]);
  };
  return {
    finish: async () => {
      s.write(request.subarray(head + first)); // (not end(): a half-closed request is abandoned by Node)
      await until('the answer', whole);
      s.destroy();
      return text;
    },
    abort: () => { s.destroy(); },
  };
}

const statuses = (text: string): number[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

// ------------------------------------------------------------------------------------------ tests

describe('mnq serve: endpoints (tiny model)', () => {
  let server: MnqServer;
  let model: Model; // the same model, loaded by the test, as the reference
  let images: Record<'png' | 'jpeg' | 'webp', Buffer>;
  const fixedRuns: number[] = [];

  beforeAll(async () => {
    model = await load(TINY);
    // the tiny model behind a flat input [N, 75]: a model that takes tensors but no images
    const flat: ServableModel = {
      inputs: [{ name: 'flat', shape: ['N', 75], type: 'float32' }], outputs: model.outputs, inputQuantization: model.inputQuantization,
      run: (x, shape) => model.run(x, [(shape as number[])[0], 3, 5, 5]),
      runInt8: (x, n) => model.runInt8(x, n),
    };
    // and behind an input with a fixed batch of 2: runs are padded to 2, requests take at most 2
    const fixed: ServableModel = {
      inputs: [{ name: 'input', shape: [2, 3, 5, 5], type: 'float32' }], outputs: model.outputs, inputQuantization: model.inputQuantization,
      run: (x, shape) => {
        fixedRuns.push((shape as number[])[0]);
        return model.run(x, shape);
      },
      runInt8: (x, n) => {
        fixedRuns.push(n);
        return model.runInt8(x, n);
      },
    };
    server = await createServer({ models: { tiny: TINY, head: tinyHeadModel(), flat, fixed }, host: HOST, port: 0, maxBatch: 8 });
    images = { png: await encode('png', 1), jpeg: await encode('jpeg', 2), webp: await encode('webp', 3) };
  });
  afterAll(async () => {
    await server?.close();
    model?.dispose();
  });

  test('listens on 127.0.0.1 at an ephemeral port', () => {
    expect(server.host).toBe(HOST);
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect([...server.models.keys()]).toEqual(['tiny', 'head', 'flat', 'fixed']);
    expect(server.models.get('fixed')?.maxBatch).toBe(2);
    expect(server.models.get('tiny')?.takesImages).toBe(true);
    expect(server.models.get('flat')?.takesImages).toBe(false);
  });

  test('health, server and model metadata, readiness', async () => {
    expect(await json(await fetch(`${server.url}/v2/health/live`))).toEqual({ live: true });
    expect(await json(await fetch(`${server.url}/v2/health/ready`))).toEqual({ ready: true });
    const meta = await json(await fetch(`${server.url}/v2`));
    expect(meta).toEqual({ name: 'mnq', version: expect.any(String), extensions: ['binary_tensor_data'] });
    const m = await json(await fetch(`${server.url}/v2/models/tiny`));
    expect(m).toMatchObject({
      name: 'tiny',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 5, 5] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 4] }],
      parameters: { max_batch_size: 8, threads: 1, preprocess: 'torch', labels: 'index' },
    });
    expect((await json(await fetch(`${server.url}/v2/models/flat`))).parameters.images).toMatch(/^not accepted: .*needs 4 dimensions/);
    expect(await json(await fetch(`${server.url}/v2/models/tiny/ready`))).toEqual({ name: 'tiny', ready: true });
  });

  test('unknown model: 404 on every model endpoint; unknown route or verb: 404', async () => {
    for (const [method, url] of [['GET', '/v2/models/nope'], ['GET', '/v2/models/nope/ready'], ['POST', '/v2/models/nope/infer'], ['POST', '/v1/models/nope:classify']]) {
      const r = await fetch(`${server.url}${url}`, { method, body: method === 'POST' ? images.png : undefined, headers: method === 'POST' ? { 'content-type': 'image/png' } : {} });
      expect(r.status).toBe(404);
      expect((await json(r)).error).toBe("unknown model 'nope' (this server has: tiny, head, flat, fixed)");
    }
    let r = await fetch(`${server.url}/v2/frobnicate`);
    expect(r.status).toBe(404);
    expect((await json(r)).error).toMatch(/^no route GET \/v2\/frobnicate: mnq serves /);
    r = await fetch(`${server.url}/v1/models/tiny:predict`, { method: 'POST', body: images.png, headers: { 'content-type': 'image/png' } });
    expect(r.status).toBe(404);
    expect((await json(r)).error).toMatch(/v1 API has POST \/v1\/models\/\{name\}:classify/);
  });

  test(':classify a PNG, JPEG and WebP body: top-k equal to model.classify on the same bytes', async () => {
    for (const format of ['png', 'jpeg', 'webp'] as const) {
      const r = await postImage(server, 'tiny', images[format], TYPES[format], '?top=3');
      expect(r.status).toBe(200);
      const body = await json(r);
      const [want] = await model.classify([images[format]], { topK: 3 });
      expect(body).toEqual({ model: 'tiny', predictions: want });
      expect(body.predictions.map((p: { label: string }) => p.label)).toEqual(want.map((p) => p.label));
    }
    // application/octet-stream: the format is told by the bytes; default top-k is 5 (clamped to 4 classes)
    const r = await postImage(server, 'tiny', images.png, 'application/octet-stream');
    expect((await json(r)).predictions).toEqual((await model.classify([images.png], { topK: 4 }))[0]);
  });

  test(':classify multipart with several images: one result per file part, in order', async () => {
    const form = new FormData();
    form.append('first', new Blob([images.jpeg]), 'a.jpg');
    form.append('note', 'a text field is ignored');
    form.append('second', new Blob([images.png]), 'b.png');
    form.append('third', new Blob([images.webp]), 'c.webp');
    const r = await fetch(`${server.url}/v1/models/tiny:classify?top=2`, { method: 'POST', body: form });
    expect(r.status).toBe(200);
    const want = await model.classify([images.jpeg, images.png, images.webp], { topK: 2 });
    expect(await json(r)).toEqual({
      model: 'tiny',
      results: [{ image: 'a.jpg', predictions: want[0] }, { image: 'b.png', predictions: want[1] }, { image: 'c.webp', predictions: want[2] }],
    });
  });

  test(':classify bad input: 400 naming the problem, 415 for a wrong Content-Type', async () => {
    const truncated = images.jpeg.subarray(0, 60);
    const corrupt = Buffer.concat([images.jpeg.subarray(0, 3), Buffer.alloc(200, 7)]);
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;', 'latin1');
    const cases: [Buffer | string, string, number, RegExp][] = [
      [truncated, 'image/jpeg', 400, /^image: (truncated|corrupt)/],
      [corrupt, 'image/jpeg', 400, /^image: (truncated|corrupt or unreadable) image/],
      [gif, 'image/png', 400, /^image: not a JPEG, PNG or WebP image: a GIF$/],
      [Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'image/png', 400, /not a JPEG, PNG or WebP image: SVG/],
      [Buffer.alloc(0), 'image/png', 400, /not a JPEG, PNG or WebP image: an empty body/],
      ['hello', 'text/plain', 415, /^unsupported Content-Type 'text\/plain': send image\/jpeg, .*multipart\/form-data$/],
      [images.png, 'application/json', 415, /unsupported Content-Type 'application\/json'/],
    ];
    for (const [body, type, status, message] of cases) {
      const r = await postImage(server, 'tiny', body, type);
      expect([status, (await json(r)).error]).toEqual([status, expect.stringMatching(message)]);
    }
    const none = await fetch(`${server.url}/v1/models/tiny:classify`, { method: 'POST', body: new Uint8Array(images.png) });
    expect(none.status).toBe(415);
    for (const q of ['?top=0', '?top=abc', '?top=1.5', '?top=-2']) {
      const r = await postImage(server, 'tiny', images.png, 'image/png', q);
      expect([r.status, (await json(r)).error]).toEqual([400, expect.stringMatching(/^\?top must be a positive integer/)]);
    }
    let r = await postImage(server, 'flat', images.png, 'image/png');
    expect([r.status, (await json(r)).error]).toEqual([400, expect.stringMatching(/^model 'flat' takes no images: /)]);
    // multipart: a bad part names itself; no file parts
    const form = new FormData();
    form.append('ok', new Blob([images.png]), 'good.png');
    form.append('bad', new Blob([corrupt]), 'broken.jpg');
    r = await fetch(`${server.url}/v1/models/tiny:classify`, { method: 'POST', body: form });
    expect([r.status, (await json(r)).error]).toEqual([400, expect.stringMatching(/^image 'broken.jpg': /)]);
    r = await postImage(server, 'tiny', 'garbage', 'multipart/form-data');
    expect([r.status, (await json(r)).error]).toEqual([400, 'the multipart body is malformed: Multipart: Boundary not found']);
    const empty = new FormData();
    empty.append('x', 'no file');
    r = await fetch(`${server.url}/v1/models/tiny:classify`, { method: 'POST', body: empty });
    expect([r.status, (await json(r)).error]).toEqual([400, 'the multipart body has no file parts: send each image as a file part']);
  });

  test('infer, JSON tensors: equal to model.run; flat or nested data; the request id comes back', async () => {
    const x = Float32Array.from({ length: 3 * 75 }, (_, i) => Math.fround(Math.sin(i * 0.7) * 1.5));
    const want = await model.run(x, [3, 3, 5, 5]);
    const flat = await postInfer(server, 'tiny', { id: 'r1', inputs: [{ name: 'input', shape: [3, 3, 5, 5], datatype: 'FP32', data: Array.from(x) }] });
    expect(flat.status).toBe(200);
    const body = await json(flat);
    expect(body).toEqual({ model_name: 'tiny', id: 'r1', outputs: [{ name: 'output', datatype: 'FP32', shape: [3, 4], data: Array.from(want) }] });
    // nested [3][3][5][5]
    const nested = Array.from({ length: 3 }, (_, n) => Array.from({ length: 3 }, (_, c) => Array.from({ length: 5 }, (_, h) => Array.from(x.subarray(((n * 3 + c) * 5 + h) * 5, ((n * 3 + c) * 5 + h + 1) * 5)))));
    const r = await postInfer(server, 'tiny', { inputs: [{ name: 'input', shape: [3, 3, 5, 5], datatype: 'FP32', data: nested }], outputs: [{ name: 'output' }] });
    expect((await json(r)).outputs[0].data).toEqual(Array.from(want));
  });

  test('infer, binary tensor data extension: binary input, binary or JSON output', async () => {
    const x = Float32Array.from({ length: 2 * 75 }, (_, i) => Math.fround(Math.cos(i * 0.3)));
    const want = await model.run(x, [2, 3, 5, 5]);
    const header = Buffer.from(JSON.stringify({
      inputs: [{ name: 'input', shape: [2, 3, 5, 5], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }],
      outputs: [{ name: 'output', parameters: { binary_data: true } }],
    }));
    const body = Buffer.concat([header, Buffer.from(x.buffer)]);
    const headers = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) };
    let r = await postInfer(server, 'tiny', body, headers);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    const n = Number(r.headers.get('inference-header-content-length'));
    const bytes = Buffer.from(await r.arrayBuffer());
    const head = JSON.parse(bytes.subarray(0, n).toString());
    expect(head).toEqual({ model_name: 'tiny', outputs: [{ name: 'output', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } }] });
    const out = new Float32Array(bytes.buffer.slice(bytes.byteOffset + n, bytes.byteOffset + bytes.length));
    expect(Array.from(out)).toEqual(Array.from(want));
    // JSON output for a binary input (application/json content type works too)
    const header2 = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [2, 3, 5, 5], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }] }));
    r = await postInfer(server, 'tiny', Buffer.concat([header2, Buffer.from(x.buffer)]), { 'content-type': 'application/json', 'inference-header-content-length': String(header2.length) });
    expect((await json(r)).outputs[0].data).toEqual(Array.from(want));
    // binary output requested for the whole request, JSON input
    r = await postInfer(server, 'tiny', { inputs: [{ name: 'input', shape: [2, 3, 5, 5], datatype: 'FP32', data: Array.from(x) }], parameters: { binary_data_output: true } });
    expect(r.headers.get('inference-header-content-length')).toMatch(/^\d+$/);
  });

  test('infer, bad requests: 400 naming the field, before anything is queued', async () => {
    const t = (shape: unknown, data: unknown, extra: Record<string, unknown> = {}) => ({ inputs: [{ name: 'input', shape, datatype: 'FP32', data, ...extra }] });
    const ok = Array(75).fill(0.5);
    const cases: [unknown, RegExp][] = [
      ['{"inputs": [', /^the request body is not valid JSON: /],
      ['', /^the request body is empty/],
      [[1, 2], /^an infer request is a JSON object with "inputs", got an array/],
      [{}, /^"inputs" must be a non-empty array of tensors; the model's input is 'input'/],
      [{ inputs: [] }, /^"inputs" must be a non-empty array/],
      [{ inputs: [t([1, 3, 5, 5], ok).inputs[0], t([1, 3, 5, 5], ok).inputs[0]] }, /^the model has one input, 'input'; the request has 2/],
      [{ inputs: [{ name: 'x', shape: [1, 3, 5, 5], datatype: 'FP32', data: ok }] }, /^unknown input 'x': the model's input is 'input'/],
      [{ inputs: [{ name: 'input', shape: [1, 3, 5, 5], datatype: 'INT32', data: ok }] }, /^input 'input' has datatype FP32, got 'INT32'/],
      [{ inputs: [{ name: 'input', shape: [1, 3, 5, 5], data: ok }] }, /has datatype FP32, got undefined/],
      [t([1, 3, 5], ok), /^inputs\[0\]\.shape \[1, 3, 5\] does not match the model's input: \[N, 3, 5, 5\] with 1 <= N <= 8/],
      [t([1, 5, 5, 3], ok), /^inputs\[0\]\.shape \[1, 5, 5, 3\] does not match/],
      [t([0, 3, 5, 5], []), /^inputs\[0\]\.shape must be an array of positive integers/],
      [t('1,3,5,5', ok), /^inputs\[0\]\.shape must be an array of positive integers/],
      [t([9, 3, 5, 5], ok), /^inputs\[0\]\.shape has a batch of 9, more than this server's limit of 8 \(--max-batch\)/],
      [t([1, 3, 5, 5], ok.slice(1)), /^inputs\[0\] shape \[1, 3, 5, 5\] needs 75 values, data has 74/],
      [t([1, 3, 5, 5], [...ok, 1]), /needs 75 values, data has more/],
      [t([2, 3, 5, 5], ok), /needs 150 values, data has 75/],
      [t([1, 3, 5, 5], [...ok.slice(1), 'x']), /^inputs\[0\]\.data must hold numbers \(FP32\), found 'x'/],
      [t([1, 3, 5, 5], [...ok.slice(1), null]), /found null/],
      [t([1, 3, 5, 5], [[[[[1]]]]]), /nested deeper than its shape/],
      [t([1, 3, 5, 5], 'abc'), /^inputs\[0\]\.data must be an array of 75 numbers/],
      [t([1, 3, 5, 5], ok, { parameters: { binary_data_size: 300 } }), /has both "data" and parameters.binary_data_size/],
      [t([1, 3, 5, 5], undefined, { parameters: { binary_data_size: 300 } }), /binary_data_size but the request has no Inference-Header-Content-Length header/],
      [{ ...t([1, 3, 5, 5], ok), outputs: [{ name: 'probs' }] }, /^outputs\[0\]: unknown output 'probs'; the model's output is 'output'/],
      [{ ...t([1, 3, 5, 5], ok), outputs: [{ name: 'output', parameters: { classification: 2 } }] }, /classification extension is not supported/],
      [{ ...t([1, 3, 5, 5], ok), id: 7 }, /^"id" must be a string, got 7/],
    ];
    for (const [body, message] of cases) {
      const r = await postInfer(server, 'tiny', body);
      expect([JSON.stringify(body).slice(0, 60), r.status, (await json(r)).error]).toEqual([JSON.stringify(body).slice(0, 60), 400, expect.stringMatching(message)]);
    }
    // binary part sizes
    const header = Buffer.from(JSON.stringify(t([1, 3, 5, 5], undefined, { parameters: { binary_data_size: 300 } })));
    const bad = [
      [Buffer.concat([header, Buffer.alloc(200)]), String(header.length), /binary part of the body has 200 bytes; inputs\[0\] binary_data_size says 300/],
      [Buffer.concat([header, Buffer.alloc(300)]), '0', /Inference-Header-Content-Length must be the byte length of the JSON header/],
      [Buffer.concat([header, Buffer.alloc(300)]), 'abc', /Inference-Header-Content-Length must be/],
      [Buffer.from(JSON.stringify(t([1, 3, 5, 5], undefined, { parameters: { binary_data_size: 12 } }))), '9999', /Inference-Header-Content-Length must be/],
    ] as const;
    for (const [body, len, message] of bad) {
      const r = await postInfer(server, 'tiny', body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': len });
      expect([r.status, (await json(r)).error]).toEqual([400, expect.stringMatching(message)]);
    }
    const wrongType = await postInfer(server, 'tiny', '{}', { 'content-type': 'text/plain' });
    expect([wrongType.status, (await json(wrongType)).error]).toEqual([415, "unsupported Content-Type 'text/plain': send application/json, application/octet-stream"]);
    expect(await metric(server, 'mnq_queue_depth{model="tiny"}')).toBe(0);
  });

  test('other models: their own input names and shapes', async () => {
    const x75 = Float32Array.from({ length: 75 }, (_, i) => i / 75);
    const f = await postInfer(server, 'flat', { inputs: [{ name: 'flat', shape: [1, 75], datatype: 'FP32', data: Array.from(x75) }] });
    expect((await json(f)).outputs[0]).toEqual({ name: 'output', datatype: 'FP32', shape: [1, 4], data: Array.from(await model.run(x75, [1, 3, 5, 5])) });
    // a fixed batch of 2: one image runs padded to 2; a request of 3 is refused
    const r = await postImage(server, 'fixed', images.png, 'image/png');
    expect((await json(r)).predictions).toEqual((await model.classify([images.png], { topK: 4 }))[0]);
    const x = Float32Array.from({ length: 75 }, (_, i) => i / 75);
    const one = await postInfer(server, 'fixed', { inputs: [{ name: 'input', shape: [1, 3, 5, 5], datatype: 'FP32', data: Array.from(x) }] });
    expect((await json(one)).outputs[0]).toEqual({ name: 'output', datatype: 'FP32', shape: [1, 4], data: Array.from(await model.run(x, [1, 3, 5, 5])) });
    expect(fixedRuns).toEqual([2, 2]);
    const three = await postInfer(server, 'fixed', { inputs: [{ name: 'input', shape: [3, 3, 5, 5], datatype: 'FP32', data: Array(225).fill(0) }] });
    expect([three.status, (await json(three)).error]).toEqual([400, expect.stringMatching(/batch of 3, more than this server's limit of 2/)]);
    const head = await load(tinyHeadModel());
    try {
      const x = Float32Array.from({ length: 36 }, (_, i) => (i % 7) * 0.1);
      const r = await postInfer(server, 'head', { inputs: [{ name: 'input', shape: [1, 4, 3, 3], datatype: 'FP32', data: Array.from(x) }] });
      expect((await json(r)).outputs[0]).toEqual({ name: 'output', datatype: 'FP32', shape: [1, 5], data: Array.from(await head.run(x, [1, 4, 3, 3])) });
    } finally {
      head.dispose();
    }
  });

  test('GET /metrics: Prometheus text with requests, errors, latency, batch sizes, queue depth, images/s, memory', async () => {
    await postImage(server, 'tiny', images.png, 'image/png');
    const r = await fetch(`${server.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    for (const name of [
      'mnq_http_requests_total{method="POST",route="/v1/models/:target",status="200"}',
      'mnq_http_request_errors_total{route="/v1/models/:target",status="400"}',
      'mnq_http_request_duration_seconds_bucket{le="0.01",route="/v1/models/:target"}',
      'mnq_batch_size_bucket{le="1",model="tiny"}',
      'mnq_batch_duration_seconds_count{model="tiny"}',
      'mnq_images_total{model="tiny"}', 'mnq_batches_total{model="tiny"}',
      'mnq_queue_depth{model="tiny"} 0', 'mnq_images_per_second{model="tiny"}',
      'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'process_cpu_seconds_total',
    ]) expect(text).toContain(name);
    expect(await metric(server, 'mnq_images_total{model="tiny"}')).toBeGreaterThanOrEqual(10);
    expect(await metric(server, 'mnq_images_per_second{model="tiny"}')).toBeGreaterThan(0);
    expect(await metric(server, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
  });

  test('the server survives a burst of random bodies: every answer a documented 4xx, then it still classifies', async () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++) {
      const len = Math.floor(rand() * 3000);
      const body = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
      if (i % 3 === 0) body.set([0xff, 0xd8, 0xff].slice(0, len));
      if (i % 3 === 1 && len >= 8) body.set(images.png.subarray(0, Math.min(len, 40)));
      const kind = i % 4;
      const r = kind === 3
        ? await postInfer(server, 'tiny', body)
        : await postImage(server, 'tiny', body, ['image/jpeg', 'image/png', 'application/octet-stream'][kind]);
      seen.add(r.status);
      expect(typeof (await json(r)).error).toBe('string');
    }
    expect([...seen].every((s) => s === 400)).toBe(true);
    expect((await postImage(server, 'tiny', images.webp, 'image/webp')).status).toBe(200);
  });
});

describe('mnq serve: body limit, back-pressure, batching, timeouts, cancellation, draining', () => {
  let model: Model;
  let png: Buffer;
  const started: MnqServer[] = [];
  const start = async (m: ServableModel | Uint8Array, options: Partial<ServeOptions> = {}) => {
    const s = await createServer({ models: { tiny: m }, host: HOST, port: 0, ...options });
    started.push(s);
    return s;
  };

  beforeAll(async () => {
    model = await load(TINY);
    png = await encode('png', 5);
  });
  afterAll(async () => {
    await Promise.all(started.map((s) => s.close()));
    model?.dispose();
  });

  test('413 for a body over the limit, before it is read; the connection stays usable', async () => {
    const server = await start(TINY, { bodyLimit: 1000 });
    const big = Buffer.concat([png, Buffer.alloc(2000)]);
    let r = await postImage(server, 'tiny', big, 'image/png');
    expect([r.status, (await json(r)).error]).toEqual([413, `the request body has ${big.length} bytes, more than this server's limit of 1000 (--body-limit)`]);
    r = await postInfer(server, 'tiny', { inputs: [{ name: 'input', shape: [1, 3, 5, 5], datatype: 'FP32', data: Array(75).fill(0.1234567891234) }] });
    expect(r.status).toBe(413);
    const form = new FormData();
    form.append('a', new Blob([big]), 'big.png');
    r = await fetch(`${server.url}/v1/models/tiny:classify`, { method: 'POST', body: form });
    expect(r.status).toBe(413);
    // one keep-alive connection: a 413, a 415 and a 200 in a row
    const { text, closed } = await oneConnection(server.port, [
      rawPost('/v1/models/tiny:classify', 'image/png', big),
      rawPost('/v1/models/tiny:classify', 'text/plain', Buffer.from('hello')),
      rawPost('/v1/models/tiny:classify', 'image/png', png),
    ]);
    expect(statuses(text)).toEqual([413, 415, 200]);
    expect(closed).toBe(false);
  });

  test('an image over maxPixels: 400 naming the limit', async () => {
    const server = await start(TINY, { maxPixels: 100 });
    const r = await postImage(server, 'tiny', await encode('png', 9, 20, 10), 'image/png');
    expect([r.status, (await json(r)).error]).toEqual([400, expect.stringMatching(/^image: image (exceeds the pixel limit of 100 pixels|has 20x10 = 200 pixels, more than the limit of 100)/)]);
    expect((await postImage(server, 'tiny', await encode('png', 9, 10, 10), 'image/png')).status).toBe(200);
  });

  test('a full queue gets 429 with Retry-After at once, while queued requests wait; they then complete', async () => {
    const g = gated(model);
    // (a long delay: the two queued start as one batch once neither holds a reservation, whenever their decodes end)
    const server = await start(g, { maxQueue: 2, maxBatch: 4, maxDelayMs: 60_000 });
    g.hold();
    const first = postImage(server, 'tiny', png, 'image/png'); // computing (held)
    await until('the first batch', () => g.runs.length === 1);
    const queued = [postImage(server, 'tiny', png, 'image/png'), postImage(server, 'tiny', png, 'image/png')];
    await until('two queued images', async () => (await metric(server, 'mnq_queue_depth{model="tiny"}')) === 2);
    let settled = 0;
    [first, ...queued].forEach((p) => p.then(() => { settled++; }));
    const r = await postImage(server, 'tiny', png, 'image/png');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect((await json(r)).error).toBe("model 'tiny' has 2 images queued, its limit (--max-queue 2); retry later");
    const inf = await postInfer(server, 'tiny', { inputs: [{ name: 'input', shape: [1, 3, 5, 5], datatype: 'FP32', data: Array(75).fill(0) }] });
    expect(inf.status).toBe(429);
    expect(settled).toBe(0); // the 429s came back while the others still waited
    g.release();
    for (const p of [first, ...queued]) expect((await p).status).toBe(200);
    expect(g.runs).toEqual([1, 2]);
    expect(await metric(server, 'mnq_rejected_total{model="tiny",reason="queue_full"}')).toBe(2);
    // a one-connection client sees the 429 and keeps its connection
    g.hold();
    const again = [postImage(server, 'tiny', png, 'image/png')];
    await until('a batch', () => g.runs.length === 3);
    again.push(postImage(server, 'tiny', png, 'image/png'), postImage(server, 'tiny', png, 'image/png'));
    await until('two queued images', async () => (await metric(server, 'mnq_queue_depth{model="tiny"}')) === 2);
    const { text, closed } = await oneConnection(server.port, [rawPost('/v1/models/tiny:classify', 'image/png', png)], 300);
    expect(statuses(text)).toEqual([429]);
    expect(closed).toBe(false);
    g.release();
    await Promise.all(again);
  });

  test('an admitted request holds its room while its body arrives: others get 429 before theirs is read', async () => {
    const server = await start(TINY, { maxQueue: 1 });
    const depth = (): Promise<number> => metric(server, 'mnq_queue_depth{model="tiny"}');
    const upload = slowUpload(server.port, rawPost('/v1/models/tiny:classify', 'image/png', png), 10);
    await until('the admission', async () => (await depth()) === 1);
    let r = await postImage(server, 'tiny', png, 'image/png');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    r = await postInfer(server, 'tiny', { inputs: [{ name: 'input', shape: [1, 3, 5, 5], datatype: 'FP32', data: Array(75).fill(0) }] });
    expect(r.status).toBe(429);
    expect(statuses(await upload.finish())).toEqual([200]); // its room was kept for it
    await until('the room given back', async () => (await depth()) === 0);
    // a client that goes away before its body has arrived gives its room back
    const gone = slowUpload(server.port, rawPost('/v1/models/tiny:classify', 'image/png', png), 10);
    await until('the admission', async () => (await depth()) === 1);
    gone.abort();
    await until('the room given back', async () => (await depth()) === 0);
    // a request refused after its admission (here: a bad ?top) gives it back too
    r = await postImage(server, 'tiny', png, 'image/png', '?top=0');
    expect(r.status).toBe(400);
    expect(await depth()).toBe(0);
    expect((await postImage(server, 'tiny', png, 'image/png')).status).toBe(200);
  });

  test('an infer request of several items is admitted with room for one, and takes the rest once its body says so', async () => {
    const server = await start(TINY, { maxQueue: 2 });
    const depth = (): Promise<number> => metric(server, 'mnq_queue_depth{model="tiny"}');
    const two = { inputs: [{ name: 'input', shape: [2, 3, 5, 5], datatype: 'FP32', data: Array(150).fill(0.5) }] };
    const upload = slowUpload(server.port, rawPost('/v1/models/tiny:classify', 'image/png', png), 10);
    await until('the admission', async () => (await depth()) === 1);
    let r = await postInfer(server, 'tiny', two); // admitted (room for 1), then 2 do not fit
    expect([r.status, (await json(r)).error]).toEqual([429, "model 'tiny' has 1 images queued, its limit (--max-queue 2); retry later"]);
    expect(await depth()).toBe(1);
    expect(statuses(await upload.finish())).toEqual([200]);
    await until('the room given back', async () => (await depth()) === 0);
    r = await postInfer(server, 'tiny', two);
    expect(r.status).toBe(200);
    expect((await json(r)).outputs[0].shape).toEqual([2, 4]);
    expect(await depth()).toBe(0);
  });

  test('a body still arriving at the request\'s timeout: its room is given back, and it gets 503', async () => {
    const server = await start(TINY, { maxQueue: 1, timeoutMs: 200 });
    const depth = (): Promise<number> => metric(server, 'mnq_queue_depth{model="tiny"}');
    const upload = slowUpload(server.port, rawPost('/v1/models/tiny:classify', 'image/png', png), 10);
    await until('the admission', async () => (await depth()) === 1);
    await until('the room given back at the deadline', async () => (await depth()) === 0);
    expect((await postImage(server, 'tiny', png, 'image/png')).status).toBe(200);
    const text = await upload.finish();
    expect(statuses(text)).toEqual([503]);
    expect(text).toMatch(/the request timed out after 200 ms before it was computed/);
    expect(await depth()).toBe(0);
  });

  test('concurrent requests are coalesced into one model run (batch sizes in the metrics)', async () => {
    const g = gated(model);
    // (images decode one at a time while a batch computes: a long delay lets them all arrive)
    const server = await start(g, { maxBatch: 8, maxDelayMs: 5_000 });
    g.hold();
    const first = postImage(server, 'tiny', png, 'image/png');
    await until('the first batch', () => g.runs.length === 1);
    const images = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => encode(i % 2 ? 'jpeg' : 'png', 10 + i)));
    const rest = images.map((b, i) => postImage(server, 'tiny', b, i % 2 === 0 ? 'image/jpeg' : 'image/png', '?top=4'));
    const x = Float32Array.from({ length: 150 }, (_, i) => i / 150);
    const tensor = postInfer(server, 'tiny', { inputs: [{ name: 'input', shape: [2, 3, 5, 5], datatype: 'FP32', data: Array.from(x) }] });
    await until('8 queued images', async () => (await metric(server, 'mnq_queue_depth{model="tiny"}')) === 8);
    g.release();
    const results = await Promise.all(rest.map(async (p) => (await json(await p)).predictions));
    expect((await first).status).toBe(200);
    // the 6 images in one int8 batch, the 2-item tensor in one float batch: 3 runs for 9 items
    expect(g.runs.length).toBe(3);
    expect([g.runs[0], ...g.runs.slice(1).sort()]).toEqual([1, 2, 6]);
    expect(results).toEqual(await model.classify(images, { topK: 4 }));
    expect((await json(await tensor)).outputs[0].data).toEqual(Array.from(await model.run(x, [2, 3, 5, 5])));
    expect(await metric(server, 'mnq_batches_total{model="tiny"}')).toBe(3);
    expect(await metric(server, 'mnq_images_total{model="tiny"}')).toBe(9);
    expect(await metric(server, 'mnq_batch_size_sum{model="tiny"}')).toBe(9);
    expect(await metric(server, 'mnq_batch_size_bucket{le="4",model="tiny"}')).toBe(2);
  });

  test('a request still queued at its timeout gets 503 and is never computed', async () => {
    const g = gated(model);
    const server = await start(g, { timeoutMs: 300 });
    g.hold();
    const first = postImage(server, 'tiny', png, 'image/png');
    await until('the first batch', () => g.runs.length === 1);
    const late = await postImage(server, 'tiny', png, 'image/png');
    expect(late.status).toBe(503);
    // (timed out in the queue, or, on a slow machine, already before its decode started)
    expect((await json(late)).error).toMatch(/^the request timed out after \d+ ms (in the queue|before it was computed)/);
    g.release();
    expect((await first).status).toBe(200); // computing when its time ran out: it completes
    await new Promise((r) => setTimeout(r, 50));
    expect(g.runs).toEqual([1]);
    expect(await metric(server, 'mnq_rejected_total{model="tiny",reason="timeout"}')).toBe(1);
  });

  test('a client that goes away while queued: its image is taken out and never computed', async () => {
    const g = gated(model);
    const server = await start(g);
    g.hold();
    const first = postImage(server, 'tiny', png, 'image/png');
    await until('the first batch', () => g.runs.length === 1);
    const abort = new AbortController();
    const gone = postImage(server, 'tiny', png, 'image/png', '', { signal: abort.signal }).catch((e: Error) => e.name);
    await until('a queued image', async () => (await metric(server, 'mnq_queue_depth{model="tiny"}')) === 1);
    abort.abort();
    expect(await gone).toBe('AbortError');
    await until('the cancellation', async () => (await metric(server, 'mnq_queue_depth{model="tiny"}')) === 0);
    g.release();
    expect((await first).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(g.runs).toEqual([1]);
    expect(await metric(server, 'mnq_rejected_total{model="tiny",reason="cancelled"}')).toBe(1);
  });

  test('close() drains: not ready, new inference 503, requests in flight answered, then it stops and disposes its models', async () => {
    const g = gated(model);
    const server = await createServer({ models: { tiny: g, own: TINY }, host: HOST, port: 0, maxDelayMs: 60_000 });
    const own = server.models.get('own')?.model as Model;
    g.hold();
    const first = postImage(server, 'tiny', png, 'image/png');
    await until('the first batch', () => g.runs.length === 1);
    const queued = postImage(server, 'tiny', png, 'image/png');
    await until('a queued image', async () => (await metric(server, 'mnq_queue_depth{model="tiny"}')) === 1);
    let closed = false;
    const closing = server.close().then(() => { closed = true; });
    const ready = await fetch(`${server.url}/v2/health/ready`);
    expect([ready.status, await json(ready)]).toEqual([503, { ready: false, error: 'the server is shutting down' }]);
    expect((await fetch(`${server.url}/v2/models/tiny/ready`)).status).toBe(503);
    expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
    const refused = await postImage(server, 'own', png, 'image/png');
    expect([refused.status, (await json(refused)).error]).toEqual([503, 'the server is shutting down']);
    expect(closed).toBe(false);
    g.release();
    expect((await first).status).toBe(200);
    expect((await queued).status).toBe(200);
    await closing;
    expect(g.runs).toEqual([1, 1]);
    expect(own.disposed).toBe(true); // loaded by the server
    expect(model.disposed).toBe(false); // given to it
    await expect(fetch(`${server.url}/v2/health/live`)).rejects.toThrow();
    await server.close(); // twice: fine
  });
});

describe('createServer options', () => {
  test.each([
    [{}, TypeError, /options\.models must name at least one model/],
    [{ models: {} }, TypeError, /options\.models must name at least one model/],
    [{ models: { 'a b': TINY } }, RangeError, /model name 'a b' must be letters, digits/],
    [{ models: { 'x:classify': TINY } }, RangeError, /model name/],
    [{ models: { a: 42 } }, TypeError, /model 'a' must be an ONNX file path, ONNX bytes, a loaded model or \{ model, preprocess\?, labels\? \}/],
    [{ models: { a: TINY }, maxBatch: 0 }, RangeError, /maxBatch must be an integer from 1 to 4096, got 0/],
    [{ models: { a: TINY }, port: 70000 }, RangeError, /port must be an integer from 0 to 65535/],
    [{ models: { a: TINY }, maxDelayMs: -1 }, RangeError, /maxDelayMs must be a number from 0 to 60000/],
    [{ models: { a: TINY }, maxQueue: 1.5 }, RangeError, /maxQueue must be an integer/],
    [{ models: { a: TINY }, threads: 0 }, RangeError, /threads must be an integer from 1 to 256/],
    [{ models: { a: TINY }, maxPixels: 0 }, RangeError, /maxPixels must be an integer/],
  ])('%p: %p', async (options, type, message) => {
    const p = createServer(options as unknown as ServeOptions);
    await expect(p).rejects.toThrow(type as ErrorConstructor);
    await expect(p).rejects.toThrow(message as RegExp);
  });

  test('a model that cannot be loaded names itself; a port in use rejects; nothing is left running', async () => {
    await expect(createServer({ models: { gone: '/nonexistent/model.onnx' }, port: 0 })).rejects.toThrow(/^model 'gone': cannot read model file '\/nonexistent\/model.onnx'/);
    await expect(createServer({ models: { junk: new Uint8Array([1, 2, 3]) }, port: 0 })).rejects.toThrow(/^model 'junk': /);
    const a = await createServer({ models: { t: TINY }, host: HOST, port: 0 });
    try {
      await expect(createServer({ models: { t: TINY }, host: HOST, port: a.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await a.close();
    }
  });
});

describeShared('mnq serve: a real MobileNetV2 on real images', () => {
  const file = sharedPath('models', 'onnx', 'mobilenet_v2_1.0_224_quant.qdq.onnx') as string;
  let server: MnqServer;
  let model: Model;
  beforeAll(async () => {
    server = await createServer({ models: { v2: file }, host: HOST, port: 0, threads: 2, maxBatch: 8 });
    model = await load(file, { threads: 2 });
  });
  afterAll(async () => {
    await server?.close();
    model?.dispose();
  });

  test('concurrent :classify requests give exactly model.classify\'s top-5 (labels, indices, probabilities)', async () => {
    const files = testImages(16);
    expect(files.length).toBe(16);
    const got = await Promise.all(files.map(async (f) => {
      const type = /\.png$/i.test(f) ? 'image/png' : 'image/jpeg';
      const r = await postImage(server, 'v2', fs.readFileSync(f), type);
      expect(r.status).toBe(200);
      return (await json(r)).predictions;
    }));
    expect(got).toEqual(await model.classify(files, { topK: 5 }));
    expect(got[0][0].label).toBe('Egyptian cat'); // cat.png
    expect(await metric(server, 'mnq_batches_total{model="v2"}')).toBeLessThanOrEqual(16);
  });

  test('multipart with several real images', async () => {
    const files = testImages(4);
    const form = new FormData();
    for (const f of files) form.append('image', new Blob([fs.readFileSync(f)]), path.basename(f));
    const r = await fetch(`${server.url}/v1/models/v2:classify?top=1`, { method: 'POST', body: form });
    const want = await model.classify(files, { topK: 1 });
    expect(await json(r)).toEqual({ model: 'v2', results: files.map((f, i) => ({ image: path.basename(f), predictions: want[i] })) });
  });
});
