// The addon in worker_threads that are stopped mid-work: worker.terminate() (as every worker pool does) and
// process.exit() inside a worker, during load, run, runSync and classify, must never abort the process
// (issue #19: Node calls the addon's completion callbacks from the dying environment, where nothing can be
// thrown). The workers run in a child process (test/helpers/worker-termination.js), so an abort fails this
// test instead of killing jest. The old addon aborted within 12 terminations in every mode.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { REPO_ROOT, sharedFile, testShared } from './helpers/shared';
import { checkDist } from './helpers/dist';

const MODEL = ['models', 'onnx', 'mobilenet_v3_small_1.0_224_quant.qdq.onnx'];
const IMAGE = ['data', 'coral', 'cat.png'];
const testWithData = testShared([MODEL.join('/'), IMAGE.join('/')]);

describe('worker_threads stopped mid-work', () => {
  testWithData('40 terminations and exits mid-load, -run, -runSync and -classify: no abort, the process runs on', () => {
    checkDist(['index.ts', 'model.ts', 'native.ts', 'classify.ts'], 'the worker threads');
    const r = spawnSync(process.execPath, [
      path.join(REPO_ROOT, 'test', 'helpers', 'worker-termination.js'),
      '--model', sharedFile(...MODEL), '--image', sharedFile(...IMAGE), '--count', '40', '--seed', '19',
    ], { encoding: 'utf8', timeout: 240_000 });
    const said = `signal ${r.signal}, status ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect({ signal: r.signal, status: r.status, said }).toEqual({ signal: null, status: 0, said });
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    expect(summary.terminations).toBe(40);
    expect(summary.byMode).toEqual({ load: 8, run: 8, runSync: 8, classify: 8, exit: 8 });
  }, 300_000);
});
