// require('mnq') (the package root) loads neither sharp nor onnxruntime-node (nor the serve / queue packages):
// they load when a function that needs them runs (lib/optional-dependencies.ts, lib/image/sharp.ts). Checked in
// a child process, where nothing else has loaded them: require.cache, and the packages after a model runs.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { sharedFile, testShared } from './helpers/shared';

const root = path.resolve(__dirname, '..');
const LAZY = /^(sharp|@img\/.*|onnxruntime-.*|fastify|@fastify\/.*|prom-client|bullmq|ioredis)$/;

function loadedPackages(script: string): string[] {
  const probe = `${script};
    const names = new Set(Object.keys(require.cache).map((f) => (/node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(f) || [])[1]).filter(Boolean));
    console.log(JSON.stringify([...names]));`;
  const r = spawnSync(process.execPath, ['-e', `(async () => { ${probe} })().catch((e) => { console.error(e); process.exit(1); })`],
    { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as string[];
}

describe('lazy loading', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) throw new Error('dist/ is not built: run npm run build:ts');
  });

  test("require('mnq') loads no optional or image package", () => {
    const loaded = loadedPackages(`require(${JSON.stringify(root)})`);
    expect(loaded.filter((p) => LAZY.test(p))).toEqual([]);
    expect(loaded).toContain('protobufjs'); // the probe sees packages: the compiler's ONNX reader is there
  });

  testShared(['models/onnx/mobilenet_v2_1.0_224_quant.qdq.onnx'])('loading and running an int8 model loads neither sharp nor onnxruntime-node; classify loads sharp only', () => {
    const file = sharedFile('models', 'onnx', 'mobilenet_v2_1.0_224_quant.qdq.onnx');
    const loaded = loadedPackages(`const mnq = require(${JSON.stringify(root)});
      const model = await mnq.load(${JSON.stringify(file)});
      await model.run(new Float32Array(3 * 224 * 224));
      model.dispose();`);
    expect(loaded.filter((p) => LAZY.test(p))).toEqual([]);
    const classify = loadedPackages(`const { classify } = require(${JSON.stringify(root)});
      await classify({ inputs: [{ name: 'x', shape: [1, 3, 2, 2] }], outputs: [{ name: 'y', shape: [1, 2] }],
        run: async () => new Float32Array([1, 0]) }, [{ data: new Uint8Array(12), width: 2, height: 2, channels: 3 }],
        { preprocess: 'tf', labels: ['a', 'b'] });`);
    expect(classify).toContain('sharp');
    expect(classify.filter((p) => /^onnxruntime-/.test(p))).toEqual([]);
  });
});
