// The dynamic batcher of `mnq serve` (lib/serve/batcher.ts) and its decode slots, on their own: which jobs go
// into which batch and when, the bounded queue, deadlines and cancellation before a job is computed, draining.
// A fake execute records the batches and is released by the test, so every case is deterministic.
import { Batcher, BatchJob, CancelledError, TimeoutError } from '../lib/serve/batcher';
import { DecodeSlots } from '../lib/serve/decode-slots';
import { decodeConcurrency } from '../lib/image/decode-threads';

interface Job extends BatchJob { id: string }
const job = (id: string, size = 1, kind = 'a'): Job => ({ id, size, kind });

/** A batcher whose batches wait for the test to finish them; `batches` lists the job ids of each. */
function harness(opts: { maxBatch?: number; maxDelayMs?: number; maxQueue?: number; maxInFlight?: number } = {}) {
  const batches: string[][] = [];
  const finish: (() => void)[] = [];
  const b = new Batcher<Job, string>({
    maxBatch: opts.maxBatch ?? 4, maxDelayMs: opts.maxDelayMs ?? 1000, maxQueue: opts.maxQueue ?? 16, maxInFlight: opts.maxInFlight,
    execute: (jobs, size) => {
      batches.push(jobs.map((j) => j.id));
      expect(size).toBe(jobs.reduce((s, j) => s + j.size, 0));
      return new Promise<string[]>((resolve) => finish.push(() => resolve(jobs.map((j) => `done ${j.id}`))));
    },
  });
  const submit = (j: Job, deadline?: number) => {
    const r = b.reserve(j.size);
    if (!r) throw new Error('queue full');
    return b.submit(r, j, deadline);
  };
  const finishNext = async () => {
    (finish.shift() as () => void)();
    await new Promise((r) => setImmediate(r));
  };
  return { b, batches, finish, submit, finishNext };
}

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Batcher', () => {
  test('a lone job with nothing else on its way starts at once', async () => {
    const { submit, batches, finishNext } = harness();
    const s = submit(job('x'));
    expect(batches).toEqual([['x']]);
    await finishNext();
    await expect(s.result).resolves.toBe('done x');
  });

  test('jobs queued behind a running batch are coalesced, up to maxBatch, in order', async () => {
    const { b, submit, batches, finishNext } = harness({ maxBatch: 4 });
    const results = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => submit(job(id)).result);
    expect(batches).toEqual([['a']]); // one batch in flight; the rest wait
    expect(b.queued).toBe(5);
    await finishNext();
    expect(batches).toEqual([['a'], ['b', 'c', 'd', 'e']]);
    await finishNext();
    expect(batches).toEqual([['a'], ['b', 'c', 'd', 'e'], ['f']]);
    await finishNext();
    await expect(Promise.all(results)).resolves.toEqual(['done a', 'done b', 'done c', 'done d', 'done e', 'done f']);
  });

  test('while others hold reservations, a batch waits for maxDelayMs or for maxBatch images', async () => {
    const { b, submit, batches } = harness({ maxBatch: 3, maxDelayMs: 40 });
    const pending = b.reserve(1); // another request, still decoding
    submit(job('a'));
    submit(job('b'));
    expect(batches).toEqual([]);
    await sleep(70);
    expect(batches).toEqual([['a', 'b']]); // the delay ran out
    // a full batch starts without waiting (after the running one)
    const { b: b2, submit: submit2, batches: batches2 } = harness({ maxBatch: 3, maxDelayMs: 10_000 });
    b2.reserve(1);
    submit2(job('p'));
    submit2(job('q'));
    expect(batches2).toEqual([]);
    submit2(job('r'));
    expect(batches2).toEqual([['p', 'q', 'r']]);
    expect(pending?.size).toBe(1);
  });

  test('releasing the last reservation starts a waiting batch (nothing else is coming)', async () => {
    const { b, submit, batches } = harness({ maxDelayMs: 10_000 });
    const r = b.reserve(1) as NonNullable<ReturnType<typeof b.reserve>>;
    submit(job('a'));
    expect(batches).toEqual([]);
    b.release(r);
    expect(batches).toEqual([['a']]);
    expect(b.depth).toBe(0);
  });

  test('the queue is bounded: reserve returns null when it would exceed maxQueue; release gives room back', () => {
    const { b } = harness({ maxQueue: 3, maxBatch: 2 });
    const r1 = b.reserve(2);
    expect(r1).not.toBeNull();
    expect(b.reserve(2)).toBeNull();
    const r2 = b.reserve(1);
    expect(r2).not.toBeNull();
    expect(b.depth).toBe(3);
    expect(b.reserve(1)).toBeNull();
    b.release(r1 as NonNullable<typeof r1>);
    b.release(r1 as NonNullable<typeof r1>); // twice: no effect
    expect(b.depth).toBe(1);
    expect(b.reserve(2)).not.toBeNull();
    expect(() => b.reserve(3)).toThrow(/1 to 2 images/);
    expect(() => b.reserve(0)).toThrow(RangeError);
  });

  test('a reservation is used once, for a job of its size', () => {
    const { b } = harness();
    const r = b.reserve(2) as NonNullable<ReturnType<typeof b.reserve>>;
    expect(() => b.submit(r, job('x', 1))).toThrow(/reservation 2/);
    b.submit(r, job('x', 2));
    expect(() => b.submit(r, job('y', 2))).toThrow(/already used/);
  });

  test('a job whose deadline passes while queued is rejected and never computed', async () => {
    const { submit, batches, finishNext } = harness();
    const a = submit(job('a'));
    const late = submit(job('late'), performance.now() + 30);
    const ok = submit(job('ok'));
    await expect(late.result).rejects.toBeInstanceOf(TimeoutError);
    await finishNext();
    expect(batches).toEqual([['a'], ['ok']]);
    await finishNext();
    await expect(Promise.all([a.result, ok.result])).resolves.toEqual(['done a', 'done ok']);
    // already past: rejected at once
    await expect(submit(job('past'), performance.now() - 1).result).rejects.toThrow(/timed out before it was queued/);
  });

  test('cancel takes a queued job out before it is computed; a running one cannot be', async () => {
    const { b, submit, batches, finishNext } = harness();
    const a = submit(job('a'));
    const gone = submit(job('gone'));
    expect(gone.cancel()).toBe(true);
    expect(gone.cancel()).toBe(false);
    await expect(gone.result).rejects.toBeInstanceOf(CancelledError);
    expect(b.depth).toBe(0);
    expect(a.cancel()).toBe(false); // running
    await finishNext();
    expect(batches).toEqual([['a']]);
  });

  test('jobs of different kinds go to different batches; each batch keeps its kind in order', async () => {
    const { submit, batches, finishNext } = harness({ maxBatch: 8 });
    submit(job('x0', 1, 'x'));
    submit(job('x1', 1, 'x'));
    submit(job('y1', 2, 'y'));
    submit(job('x2', 1, 'x'));
    submit(job('y2', 1, 'y'));
    await finishNext();
    await finishNext();
    await finishNext();
    expect(batches).toEqual([['x0'], ['x1', 'x2'], ['y1', 'y2']]);
  });

  test('a job that does not fit the rest of a batch waits for the next (jobs are never split)', async () => {
    const { submit, batches, finishNext } = harness({ maxBatch: 4 });
    submit(job('first'));
    submit(job('a', 3));
    submit(job('b', 2));
    submit(job('c', 1));
    await finishNext();
    await finishNext();
    await finishNext();
    expect(batches).toEqual([['first'], ['a'], ['b', 'c']]);
  });

  test('maxInFlight batches compute at once', async () => {
    const { b, submit, batches, finishNext } = harness({ maxInFlight: 2, maxBatch: 2 });
    for (const id of ['a', 'b', 'c', 'd', 'e']) submit(job(id));
    expect(batches).toEqual([['a'], ['b']]);
    expect(b.inFlight).toBe(2);
    await finishNext();
    expect(batches).toEqual([['a'], ['b'], ['c', 'd']]);
    expect(b.inFlight).toBe(2);
  });

  test('drain starts waiting batches at once; idle() resolves when nothing is reserved, queued or running', async () => {
    const { b, submit, batches, finishNext } = harness({ maxDelayMs: 60_000 });
    const out = b.reserve(1) as NonNullable<ReturnType<typeof b.reserve>>;
    submit(job('a'));
    expect(batches).toEqual([]);
    let idle = false;
    b.idle().then(() => { idle = true; });
    b.drain();
    expect(batches).toEqual([['a']]);
    await finishNext();
    await tick();
    expect(idle).toBe(false); // a reservation is still out
    b.release(out);
    await tick();
    expect(idle).toBe(true);
    expect(b.depth).toBe(0);
  });

  test('a failing batch rejects its jobs with its error; the next batch still runs', async () => {
    let calls = 0;
    const b = new Batcher<Job, string>({
      maxBatch: 4, maxDelayMs: 0, maxQueue: 8,
      execute: async (jobs) => {
        if (calls++ === 0) throw new Error('native failure');
        return jobs.map((j) => j.id);
      },
    });
    const r1 = b.submit(b.reserve(1)!, job('a'));
    await expect(r1.result).rejects.toThrow('native failure');
    await expect(b.submit(b.reserve(1)!, job('b')).result).resolves.toBe('b');
    const bad = new Batcher<Job, string>({ maxBatch: 2, maxDelayMs: 0, maxQueue: 8, execute: async () => ['one', 'two'] });
    await expect(bad.submit(bad.reserve(1)!, job('a')).result).rejects.toThrow(/1 jobs gave 2 results/);
    await b.idle();
  });

  test('options are checked', () => {
    const execute = async () => [];
    expect(() => new Batcher({ maxBatch: 0, maxDelayMs: 1, maxQueue: 1, execute })).toThrow(/maxBatch must be an integer >= 1/);
    expect(() => new Batcher({ maxBatch: 1, maxDelayMs: -1, maxQueue: 1, execute })).toThrow(/maxDelayMs/);
    expect(() => new Batcher({ maxBatch: 1, maxDelayMs: 1, maxQueue: 1.5, execute })).toThrow(/maxQueue/);
  });
});

describe('DecodeSlots', () => {
  test('at most `idle` decodes at once, `busy` while a model computes, in arrival order', async () => {
    const slots = new DecodeSlots({ busy: 1, idle: 2 });
    const started: string[] = [];
    const finish = new Map<string, () => void>();
    const decode = (id: string) => slots.run(() => new Promise<string>((resolve) => {
      started.push(id);
      finish.set(id, () => resolve(id));
    }));
    const all = ['a', 'b', 'c', 'd'].map(decode);
    await tick();
    expect(started).toEqual(['a', 'b']);
    expect(slots.queued).toBe(2);
    slots.computeStarted();
    finish.get('a')!();
    await tick();
    await tick();
    expect(started).toEqual(['a', 'b']); // busy limit 1: b still runs
    finish.get('b')!();
    await tick();
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    slots.computeFinished();
    await tick();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    finish.get('c')!();
    finish.get('d')!();
    await expect(Promise.all(all)).resolves.toEqual(['a', 'b', 'c', 'd']);
  });

  test('a failing decode frees its slot', async () => {
    const slots = new DecodeSlots({ busy: 1, idle: 1 });
    await expect(slots.run(() => Promise.reject(new Error('corrupt')))).rejects.toThrow('corrupt');
    await expect(slots.run(async () => 'next')).resolves.toBe('next');
  });

  test('limits: decoders fixes both; otherwise the cores the model threads leave, below the libuv pool', () => {
    expect(decodeConcurrency(2, 3)).toEqual({ busy: 3, idle: 3 });
    const saved = process.env.UV_THREADPOOL_SIZE;
    process.env.UV_THREADPOOL_SIZE = '2';
    try {
      const l = decodeConcurrency(1);
      expect(l.busy).toBe(1);
      expect(l.idle).toBe(1); // pool of 2: one thread stays for model runs
    } finally {
      if (saved === undefined) delete process.env.UV_THREADPOOL_SIZE;
      else process.env.UV_THREADPOOL_SIZE = saved;
    }
    const l = decodeConcurrency(256);
    expect(l.busy).toBe(1);
    expect(l.idle).toBeGreaterThanOrEqual(1);
  });
});
