// Model manifest and `mnq fetch`: copy from a mirror directory with sha256 verification; wrong checksum,
// unknown model, missing file, no URL: clear errors and no partial file. No network.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fetchModel, findModel, loadManifest, Manifest, ManifestEntry, MANIFEST_PATH, resolveModelPath, run } from '../lib/cli/fetch';
import { loadLabels } from '../lib/labels';
import { parsePreprocess } from '../lib/preprocess-spec';
import { sharedFile, testShared } from './helpers/shared';

const SHARED_ONNX = sharedFile('models', 'onnx');

const sha = (b: Buffer | string): string => crypto.createHash('sha256').update(b).digest('hex');

function entry(name: string, content: string, extra: Partial<ManifestEntry> = {}): ManifestEntry {
  return {
    name, file: `${name}.onnx`, architecture: 'mobilenet_v2', input: [3, 224, 224], format: 'int8-qdq', classes: 1001,
    preprocess: 'tf', labels: 'imagenet-1001', url: null, sha256: sha(content), license: 'test', ...extra,
  };
}

describe('mnq fetch', () => {
  let tmp: string;
  let mirror: string;
  let out: string;
  let manifest: Manifest;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-fetch-'));
    mirror = path.join(tmp, 'mirror');
    out = path.join(tmp, 'models');
    fs.mkdirSync(mirror);
    fs.writeFileSync(path.join(mirror, 'good.onnx'), 'good model bytes');
    fs.writeFileSync(path.join(mirror, 'tampered.onnx'), 'tampered model bytes');
    manifest = {
      version: 1,
      models: [
        entry('good', 'good model bytes'),
        entry('tampered', 'the original bytes'),
        entry('absent', 'whatever'),
        entry('remote', 'x', { url: 'https://example.invalid/remote.onnx' }),
      ],
    };
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('copies from a mirror and verifies the checksum; a second fetch finds it present', async () => {
    const r = await fetchModel('good', { from: mirror, dir: out, manifest });
    expect(r.status).toBe('copied');
    expect(r.path).toBe(path.join(out, 'good.onnx'));
    expect(fs.readFileSync(r.path, 'utf8')).toBe('good model bytes');
    expect((await fetchModel('good', { from: mirror, dir: out, manifest })).status).toBe('present');
    // a damaged local copy is replaced
    fs.writeFileSync(r.path, 'damaged');
    expect((await fetchModel('good', { from: mirror, dir: out, manifest })).status).toBe('copied');
    expect(fs.readFileSync(r.path, 'utf8')).toBe('good model bytes');
    expect(fs.readdirSync(out)).toEqual(['good.onnx']);
  });

  it('wrong checksum: clear error, nothing left behind', async () => {
    await expect(fetchModel('tampered', { from: mirror, dir: out, manifest })).rejects.toThrow(
      new RegExp(`checksum mismatch for 'tampered'.*expected sha256 ${sha('the original bytes')}, got ${sha('tampered model bytes')}.*nothing was saved`),
    );
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('unknown model, file missing from the mirror, no URL: clear errors, nothing left behind', async () => {
    await expect(fetchModel('resnet50', { from: mirror, dir: out, manifest })).rejects.toThrow(/unknown model 'resnet50'. Known models: good, tampered, absent, remote/);
    await expect(fetchModel('absent', { from: mirror, dir: out, manifest })).rejects.toThrow(/'absent\.onnx' not found in mirror directory/);
    await expect(fetchModel('absent', { dir: out, manifest })).rejects.toThrow(/has no public download URL.*--from DIR/);
    expect(fs.existsSync(out) ? fs.readdirSync(out) : []).toEqual([]);
  });

  it('a mirror directory that does not exist, or is a file, is named as such; no directory is made', async () => {
    await expect(fetchModel('good', { from: path.join(tmp, 'nope'), dir: out, manifest })).rejects.toThrow(/^mirror directory '.*nope' does not exist$/);
    await expect(fetchModel('good', { from: path.join(mirror, 'good.onnx'), dir: out, manifest })).rejects.toThrow(/^mirror directory '.*good\.onnx' is not a directory$/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('the shipped manifest is well formed: labels and preprocessing it names exist', () => {
    const m = loadManifest();
    expect(m.models.length).toBeGreaterThan(5);
    const names = new Set<string>();
    for (const e of m.models) {
      expect(names.has(e.name)).toBe(false);
      names.add(e.name);
      expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(e.license).toBeTruthy();
      expect(() => parsePreprocess(e.preprocess)).not.toThrow();
      const n = Array.isArray(e.labels) ? e.labels.length : loadLabels(e.labels).names.length;
      expect(n).toBe(e.classes);
    }
    expect(findModel(m, 'mobilenet_v2_1.0_224_quant.qdq').classes).toBe(1001);
    expect(fs.existsSync(MANIFEST_PATH)).toBe(true);
  });

  testShared(['models/onnx/mobilenet_v1_0.25_128_quant.float.onnx'])('mnq fetch --from the shared models: every shared file the manifest lists verifies', async () => {
    const m = loadManifest();
    const listed = m.models.filter((e) => fs.existsSync(path.join(SHARED_ONNX, e.file)));
    expect(listed.length).toBeGreaterThan(0);
    // checksums of all listed shared files (reads them, no copy)
    for (const e of listed) expect(sha(fs.readFileSync(path.join(SHARED_ONNX, e.file)))).toBe(e.sha256);
    // the CLI copies one (small) and then finds it by name
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const code = await run(['mobilenet_v1_0.25_128_quant.float', '--from', SHARED_ONNX, '--dir', out]);
      expect(code).toBe(0);
      expect(log.mock.calls.join('\n')).toMatch(/mobilenet_v1_0.25_128_quant.float: copied, sha256 ok/);
    } finally {
      log.mockRestore();
    }
    expect(resolveModelPath('mobilenet_v1_0.25_128_quant.float', out)).toBe(path.join(out, 'mobilenet_v1_0.25_128_quant.float.onnx'));
    expect(() => resolveModelPath('mobilenet_v1_0.5_160_quant.float', out)).toThrow(/not fetched yet: run 'mnq fetch mobilenet_v1_0.5_160_quant.float'/);
    expect(() => resolveModelPath('no-such-model', out)).toThrow(/not found \(and it is not a known model name/);
  });

  it('CLI: unknown model exits 1 with the list; no name exits 2', async () => {
    const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await run(['nope', '--from', mirror, '--dir', out])).toBe(1);
      expect(err.mock.calls.join('\n')).toMatch(/unknown model 'nope'. Known models: mobilenet_v2_1.0_224_quant.qdq/);
      expect(await run([])).toBe(2);
    } finally {
      err.mockRestore();
    }
  });
});
