/**
 * @jest-environment ./test/helpers/node-env.js
 */
// What mnq submit and mnq worker exchange and write, without Redis: job ids and job data checks
// (lib/queue/jobs.ts), the results file and its resumption (results-file.ts), the submit inputs (inputs.ts),
// and a job's images classified by the worker (classifyJobImages): one result per image, in order, bad
// images as per-image errors. The model is a tiny int8 graph run by mnq's runtime (needs the addon).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { Classifier } from '../lib/classify';
import { listImageFiles } from '../lib/cli/classify';
import { load, Model } from '../lib/model';
import { ImageFetcher } from '../lib/queue/fetch-image';
import { listSubmitImages } from '../lib/queue/inputs';
import { chunkJobId, jobData, parseJobData, parseJobResult } from '../lib/queue/jobs';
import { resultLine, ResultsWriter, resumeResults } from '../lib/queue/results-file';
import { classifyJobImages } from '../lib/queue/worker';
import { tinyConvModel } from './helpers/tiny-models';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-queue-format-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('jobs', () => {
  test('the job id is a hash of the sources and top-k: equal chunks share it, any change gives another', () => {
    const a = chunkJobId(['/x/1.jpg', '/x/2.jpg'], 5);
    expect(a).toMatch(/^mnq-[0-9a-f]{40}$/);
    expect(chunkJobId(['/x/1.jpg', '/x/2.jpg'], 5)).toBe(a);
    expect(chunkJobId(['/x/2.jpg', '/x/1.jpg'], 5)).not.toBe(a);
    expect(chunkJobId(['/x/1.jpg', '/x/2.jpg'], 3)).not.toBe(a);
    expect(chunkJobId(['/x/1.jpg'], 5)).not.toBe(a);
    // sources are length-prefixed: no two lists hash the same text
    expect(chunkJobId(['a\n2:b'], 5)).not.toBe(chunkJobId(['a', 'b'], 5));
  });

  test('job data is checked: anything else is refused with a reason', () => {
    expect(parseJobData(jobData(['/x/1.jpg'], 5))).toEqual({ v: 1, images: ['/x/1.jpg'], topK: 5 });
    const bad: [unknown, RegExp][] = [
      [null, /not an object/], ['rm -rf /', /not an object/], [{ v: 2, images: ['a'], topK: 5 }, /format 2 is not 1/],
      [{ v: 1, images: [], topK: 5 }, /images must be a list of 1\.\.4096/], [{ v: 1, images: 'a', topK: 5 }, /images must be a list/],
      [{ v: 1, images: [42], topK: 5 }, /non-empty string/], [{ v: 1, images: ['a\0b'], topK: 5 }, /without NUL/],
      [{ v: 1, images: ['x'.repeat(9000)], topK: 5 }, /at most 8192 characters/], [{ v: 1, images: ['a'], topK: 0 }, /topK must be an integer in 1\.\.1000/],
      [{ v: 1, images: ['a'], topK: 2.5 }, /topK/], [{ v: 1, images: Array(5000).fill('a'), topK: 1 }, /1\.\.4096/],
    ];
    for (const [data, re] of bad) expect(() => parseJobData(data)).toThrow(re);
  });

  test('a return value is checked against its chunk', () => {
    const ok = { v: 1, model: 'm sha256:1', results: [{ predictions: [] }, { error: 'x' }] };
    expect(parseJobResult(ok, 2)).toBe(ok);
    expect(() => parseJobResult(ok, 3)).toThrow('the job returned 2 results for 3 images');
    expect(() => parseJobResult({ ...ok, results: [{}, {}] }, 2)).toThrow(/neither predictions nor an error/);
    expect(() => parseJobResult('done', 2)).toThrow(/not an mnq classification result/);
  });
});

describe('results file', () => {
  const names = ['a.jpg', 'b.jpg', 'c.jpg'];
  const line = (n: string) => resultLine(n, { predictions: [{ label: 'cat', index: 1, probability: 0.5 }] });

  test('lines have the shape of mnq classify --json', () => {
    expect(JSON.parse(line('a.jpg'))).toEqual({ image: 'a.jpg', predictions: [{ label: 'cat', index: 1, probability: 0.5 }] });
    expect(JSON.parse(resultLine('b.jpg', { error: 'corrupt' }))).toEqual({ image: 'b.jpg', error: 'b.jpg: corrupt' });
  });

  test('resuming: no file, a complete prefix, a cut-off last line (removed), all done', async () => {
    const f = path.join(tmp, 'r1.jsonl');
    expect(await resumeResults(f, names)).toBe(0);
    const w = new ResultsWriter(f);
    w.append([line('a.jpg')]);
    w.close();
    expect(await resumeResults(f, names)).toBe(1);
    fs.appendFileSync(f, line('b.jpg').slice(0, 10));
    expect(await resumeResults(f, names)).toBe(1);
    expect(fs.readFileSync(f, 'utf8')).toBe(line('a.jpg') + '\n');
    const w2 = new ResultsWriter(f);
    w2.append([line('b.jpg'), line('c.jpg')]);
    w2.close();
    expect(await resumeResults(f, names)).toBe(3);
  });

  test('a file of another input is refused, not overwritten', async () => {
    const f = path.join(tmp, 'r2.jsonl');
    fs.writeFileSync(f, `${line('a.jpg')}\n${line('x.jpg')}\n`);
    await expect(resumeResults(f, names)).rejects.toThrow(`${f}: line 2 is for "x.jpg" but input image 2 is "b.jpg": the file holds the results of another input`);
    fs.writeFileSync(f, 'hello\n');
    await expect(resumeResults(f, names)).rejects.toThrow(`${f}: line 1 is not JSON`);
    fs.writeFileSync(f, names.concat('d.jpg').map(line).join('\n') + '\n');
    await expect(resumeResults(f, names)).rejects.toThrow('has more lines than the 3 input images');
    expect(fs.readFileSync(f, 'utf8').split('\n')).toHaveLength(5);
  });
});

describe('submit inputs', () => {
  test('a list file: paths relative to the list, URLs as they are, comments and blank lines skipped', () => {
    const dir = path.join(tmp, 'lists');
    fs.mkdirSync(dir, { recursive: true });
    const list = path.join(dir, 'list.txt');
    fs.writeFileSync(list, '# images\nimgs/a.jpg\n\n  /abs/b.png  \nhttps://example.com/c.jpg\r\nfile:///d/e.jpg\n');
    expect(listSubmitImages(list)).toEqual([
      { name: 'imgs/a.jpg', source: path.join(dir, 'imgs', 'a.jpg') },
      { name: '/abs/b.png', source: '/abs/b.png' },
      { name: 'https://example.com/c.jpg', source: 'https://example.com/c.jpg' },
      { name: 'file:///d/e.jpg', source: 'file:///d/e.jpg' },
    ]);
    fs.writeFileSync(list, '# nothing\n');
    expect(() => listSubmitImages(list)).toThrow('the list names no images');
    expect(() => listSubmitImages(path.join(tmp, 'missing'))).toThrow('no such directory or list file');
  });

  test('a directory: its image files in the order of mnq classify DIR, named as it names them', async () => {
    const dir = path.join(tmp, 'dir');
    fs.mkdirSync(path.join(dir, 'z'), { recursive: true });
    for (const f of ['b.jpg', 'a.png', 'z/c.webp', 'notes.txt']) fs.writeFileSync(path.join(dir, f), 'x');
    const images = listSubmitImages(dir);
    expect(images.map((i) => i.name)).toEqual(listImageFiles(dir));
    expect(images.map((i) => i.name)).toEqual([path.join(dir, 'a.png'), path.join(dir, 'b.jpg'), path.join(dir, 'z', 'c.webp')]);
    expect(images.every((i) => path.isAbsolute(i.source))).toBe(true);
    fs.mkdirSync(path.join(tmp, 'empty'));
    expect(() => listSubmitImages(path.join(tmp, 'empty'))).toThrow('directory contains no image files');
  });
});

describe('a job classified by the worker', () => {
  let model: Model;
  let classifier: Classifier;
  let root: string;
  beforeAll(async () => {
    model = await load(tinyConvModel(), { threads: 1 });
    classifier = new Classifier(model, { batchSize: 2, preprocess: 'torch' });
    root = path.join(tmp, 'images');
    fs.mkdirSync(root);
    for (let i = 0; i < 4; i++) {
      const px = Buffer.alloc(40 * 30 * 3);
      for (let j = 0; j < px.length; j++) px[j] = (j * (i + 3) * 7) & 255;
      await sharp(px, { raw: { width: 40, height: 30, channels: 3 } }).png().toFile(path.join(root, `img${i}.png`));
    }
    const good = fs.readFileSync(path.join(root, 'img0.png'));
    fs.writeFileSync(path.join(root, 'truncated.png'), good.subarray(0, 60));
    fs.writeFileSync(path.join(root, 'text.png'), 'not an image at all');
  });
  afterAll(() => model.dispose());

  test('one result per image in job order: predictions as classify gives them, unreadable and refused images as errors', async () => {
    const fetcher = new ImageFetcher({ root, maxBytes: 1 << 20, timeoutMs: 5000 });
    const sources = [
      path.join(root, 'img0.png'), path.join(root, 'truncated.png'), '/etc/passwd', 'img1.png', path.join(root, 'text.png'),
      path.join(root, 'img2.png'), 'http://127.0.0.1:9/x.png', path.join(root, 'img3.png'), path.join(root, 'missing.png'),
    ];
    const results = await classifyJobImages(classifier, fetcher, { v: 1, images: sources, topK: 3 }, 3);
    expect(results).toHaveLength(sources.length);
    const expected = await classifier.classify(['img0.png', 'img1.png', 'img2.png', 'img3.png'].map((f) => path.join(root, f)), { topK: 3 });
    expect(results[0]).toEqual({ predictions: expected[0] });
    expect(results[3]).toEqual({ predictions: expected[1] });
    expect(results[5]).toEqual({ predictions: expected[2] });
    expect(results[7]).toEqual({ predictions: expected[3] });
    expect(results[0].predictions).toHaveLength(3);
    // decoding errors carry the reason only (the output line puts the image's name before it)
    expect(results[1].error).toMatch(/^(truncated image|corrupt or unreadable image)/);
    expect(results[4].error).toMatch(/^unsupported or unrecognised image format/);
    expect(results[2].error).toMatch(/^refused by --root: '\/etc\/passwd' is outside /);
    expect(results[6].error).toBe("refused by --allow-host: host '127.0.0.1:9' is not allowed");
    expect(results[8].error).toBe('file not found');
  });
});
