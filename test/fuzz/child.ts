// One fuzz worker process (forked by test/fuzz/run.ts, with test/helpers/ts-register.js): loads each case's bytes
// with mnq's public load(), runs a loaded model once on one image, and reports what happened. A crash or hang of
// this process is what the runner looks for; everything it can report is an outcome.
import { load, OnnxFormatError, UnsupportedModelError } from '../../lib';

export interface CaseOutcome {
  id: number;
  /** loaded (and ran), or rejected by load(), or loaded but its run failed */
  result: 'loaded' | 'rejected' | 'run-failed';
  errorName?: string;
  message?: string;
  /** the error is one of mnq's model errors, not one made from an internal error (see lib/compiler) */
  modelError?: boolean;
  ms: number;
}

const MAX_RUN_ELEMENTS = 1 << 24; // a loaded model with a larger input is not run (its input alone would be 64 MB)

async function one(id: number, bytes: Uint8Array): Promise<CaseOutcome> {
  const t0 = Date.now();
  const done = (o: Omit<CaseOutcome, 'id' | 'ms'>): CaseOutcome => ({ id, ms: Date.now() - t0, ...o });
  const describe = (e: unknown) => {
    const err = e as Error & { cause?: unknown };
    const modelError = (e instanceof OnnxFormatError || e instanceof UnsupportedModelError) && !(err.cause instanceof Error);
    return { errorName: err?.name ?? typeof e, message: String(err?.message ?? e), modelError };
  };
  let model;
  try {
    model = await load(bytes, { threads: 1 });
  } catch (e) {
    return done({ result: 'rejected', ...describe(e) });
  }
  try {
    const per = model.inputs[0].shape.slice(1).reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);
    if (per <= MAX_RUN_ELEMENTS) {
      const x = new Float32Array(per);
      for (let i = 0; i < per; i++) x[i] = ((i * 7919) % 255) / 127.5 - 1;
      await model.run(x);
    }
    return done({ result: 'loaded' });
  } catch (e) {
    return done({ result: 'run-failed', ...describe(e) });
  } finally {
    model.dispose();
  }
}

process.on('message', (msg: { id: number; bytes: Uint8Array }) => {
  one(msg.id, msg.bytes).then((o) => process.send!(o), (e) => process.send!({ id: msg.id, result: 'rejected', errorName: 'ChildError', message: String(e), ms: 0 }));
});
process.send!({ ready: true });
