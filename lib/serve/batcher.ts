// The dynamic batcher of `mnq serve`: jobs (one or more images each) wait in a bounded queue and are coalesced
// into model runs of up to `maxBatch` images.
//
// A request first reserves room for its images (`reserve`: null when the queue is full, so the server can answer
// 429 at once), prepares its input (decoding an image, parsing a tensor), then submits its job. Queue depth counts
// reserved and queued images; a job leaves it when its batch starts. With a run slot free (`maxInFlight` batches
// per model), the queued jobs of the head's kind start as one batch when they fill `maxBatch` images, when the
// oldest has waited `maxDelayMs`, at once when no other request holds a reservation (nothing else is on its way),
// and at once while draining. A job whose deadline passes while it waits, or that is cancelled (its client went
// away), is taken out of the queue before it is computed.

/** A job's deadline passed before its batch started. */
export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/** A job was cancelled (its client went away) before its batch started. */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

/** What the batcher needs to know of a job. */
export interface BatchJob {
  /** images in the job (1 <= size <= maxBatch); a job is never split over batches */
  readonly size: number;
  /** jobs of one kind only are batched together (e.g. 'int8' images, 'float' tensors) */
  readonly kind: string;
}

export interface BatcherOptions<J extends BatchJob, R> {
  /** most images per batch */
  maxBatch: number;
  /** how long the oldest queued job may wait for others before its batch starts, ms */
  maxDelayMs: number;
  /** most images reserved or queued (not yet running) */
  maxQueue: number;
  /** batches computing at once (default 1) */
  maxInFlight?: number;
  /** Computes one batch: `jobs` in queue order, of one kind, `size` images in all; one result per job. */
  execute(jobs: J[], size: number): Promise<R[]>;
  /** clock in ms (default performance.now) */
  now?: () => number;
}

/** Room for `size` images in the queue, taken by `reserve`; give it back with `release` or use it in `submit`. */
export class Reservation {
  /** false once released or submitted */
  active = true;
  constructor(readonly size: number) {}
}

/** A submitted job: its result, and a way to cancel it while it still waits. */
export interface Submitted<R> {
  readonly result: Promise<R>;
  /** Takes the job out of the queue (its result rejects with a CancelledError); false once its batch started. */
  cancel(): boolean;
}

interface Entry<J, R> {
  job: J;
  enqueuedAt: number;
  state: 'queued' | 'running' | 'settled';
  timer?: NodeJS.Timeout;
  resolve(r: R): void;
  reject(e: Error): void;
}

export class Batcher<J extends BatchJob, R> {
  readonly maxBatch: number;
  readonly maxDelayMs: number;
  readonly maxQueue: number;
  readonly maxInFlight: number;
  private readonly execute: (jobs: J[], size: number) => Promise<R[]>;
  private readonly now: () => number;
  private readonly queue: Entry<J, R>[] = [];
  private reservedImages = 0;
  private queuedImages = 0;
  private running = 0;
  private draining = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(options: BatcherOptions<J, R>) {
    const int = (v: number, what: string, min: number): number => {
      if (!Number.isInteger(v) || v < min) throw new RangeError(`${what} must be an integer >= ${min}, got ${v}`);
      return v;
    };
    this.maxBatch = int(options.maxBatch, 'maxBatch', 1);
    this.maxQueue = int(options.maxQueue, 'maxQueue', 1);
    this.maxInFlight = int(options.maxInFlight ?? 1, 'maxInFlight', 1);
    if (!(options.maxDelayMs >= 0 && Number.isFinite(options.maxDelayMs))) throw new RangeError(`maxDelayMs must be a number >= 0, got ${options.maxDelayMs}`);
    this.maxDelayMs = options.maxDelayMs;
    this.execute = options.execute;
    this.now = options.now ?? (() => performance.now());
  }

  /** Images reserved or queued: what counts against maxQueue. */
  get depth(): number {
    return this.reservedImages + this.queuedImages;
  }

  /** Images queued (prepared, waiting for their batch). */
  get queued(): number {
    return this.queuedImages;
  }

  /** Batches computing now. */
  get inFlight(): number {
    return this.running;
  }

  /** Room for `size` images, or null when the queue has less (answer 429). */
  reserve(size: number): Reservation | null {
    if (!Number.isInteger(size) || size < 1 || size > this.maxBatch) throw new RangeError(`a job has 1 to ${this.maxBatch} images, got ${size}`);
    if (this.depth + size > this.maxQueue) return null;
    this.reservedImages += size;
    return new Reservation(size);
  }

  /** Gives back a reservation that will not be submitted (a failed decode, a bad request). */
  release(r: Reservation): void {
    if (!r.active) return;
    r.active = false;
    this.reservedImages -= r.size;
    this.pump(); // fewer requests on their way: a waiting batch may start now
  }

  /**
   * Queues a job in the place of its reservation. Its result rejects with a TimeoutError if its batch has not
   * started by `deadline` (same clock as `now`), with a CancelledError after cancel(), or with the error of its
   * batch.
   */
  submit(r: Reservation, job: J, deadline = Infinity): Submitted<R> {
    if (!r.active) throw new Error('this reservation was already used or released');
    if (job.size !== r.size) throw new RangeError(`the job has ${job.size} images but its reservation ${r.size}`);
    r.active = false;
    this.reservedImages -= r.size;
    let entry!: Entry<J, R>;
    const result = new Promise<R>((resolve, reject) => {
      entry = { job, enqueuedAt: this.now(), state: 'queued', resolve, reject };
    });
    const wait = deadline - entry.enqueuedAt;
    if (wait <= 0) {
      entry.state = 'settled';
      entry.reject(new TimeoutError('the request timed out before it was queued'));
      this.pump();
      return { result, cancel: () => false };
    }
    if (Number.isFinite(wait)) {
      entry.timer = setTimeout(() => this.expire(entry), Math.ceil(wait));
      entry.timer.unref();
    }
    this.queue.push(entry);
    this.queuedImages += job.size;
    this.pump();
    return { result, cancel: () => this.cancel(entry) };
  }

  /** From now on batches start without waiting for others (shutdown). */
  drain(): void {
    this.draining = true;
    this.pump();
  }

  /** Resolves when nothing is reserved, queued or running. */
  idle(): Promise<void> {
    if (this.depth === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ------------------------------------------------------------ internals
  private remove(entry: Entry<J, R>): void {
    const i = this.queue.indexOf(entry);
    if (i >= 0) this.queue.splice(i, 1);
    this.queuedImages -= entry.job.size;
    if (entry.timer) clearTimeout(entry.timer);
    entry.state = 'settled';
  }

  private expire(entry: Entry<J, R>): void {
    if (entry.state !== 'queued') return;
    this.remove(entry);
    entry.reject(new TimeoutError(`the request timed out after ${Math.round(this.now() - entry.enqueuedAt)} ms in the queue`));
    this.pump();
  }

  private cancel(entry: Entry<J, R>): boolean {
    if (entry.state !== 'queued') return false;
    this.remove(entry);
    entry.reject(new CancelledError());
    this.pump();
    return true;
  }

  /** Starts every batch that is due; otherwise sets a timer for when the oldest job's delay runs out. */
  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.running < this.maxInFlight && this.queue.length) {
      const head = this.queue[0];
      const waited = this.now() - head.enqueuedAt;
      const due = this.draining || this.reservedImages === 0 || waited >= this.maxDelayMs || this.imagesOfKind(head.job.kind) >= this.maxBatch;
      if (!due) {
        this.timer = setTimeout(() => this.pump(), Math.max(1, Math.ceil(this.maxDelayMs - waited)));
        this.timer.unref();
        break;
      }
      this.start(this.take(head.job.kind));
    }
    if (this.depth === 0 && this.running === 0 && this.idleWaiters.length) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private imagesOfKind(kind: string): number {
    let n = 0;
    for (const e of this.queue) if (e.job.kind === kind) n += e.job.size;
    return n;
  }

  /** The queued jobs of one kind, in order, up to maxBatch images (stops at the first that does not fit). */
  private take(kind: string): Entry<J, R>[] {
    const batch: Entry<J, R>[] = [];
    let size = 0;
    for (let i = 0; i < this.queue.length;) {
      const e = this.queue[i];
      if (e.job.kind !== kind) {
        i++;
        continue;
      }
      if (size + e.job.size > this.maxBatch) break;
      this.queue.splice(i, 1);
      batch.push(e);
      size += e.job.size;
    }
    return batch;
  }

  private start(batch: Entry<J, R>[]): void {
    let size = 0;
    for (const e of batch) {
      if (e.timer) clearTimeout(e.timer);
      e.state = 'running';
      size += e.job.size;
    }
    this.queuedImages -= size;
    this.running++;
    let results: Promise<R[]>;
    try {
      results = this.execute(batch.map((e) => e.job), size);
    } catch (err) {
      results = Promise.reject(err);
    }
    results.then(
      (rs) => {
        if (!Array.isArray(rs) || rs.length !== batch.length) throw new Error(`a batch of ${batch.length} jobs gave ${Array.isArray(rs) ? rs.length : 'no'} results`);
        batch.forEach((e, i) => e.resolve(rs[i]));
      },
    ).catch((err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const x of batch) x.reject(e);
    }).finally(() => {
      for (const x of batch) x.state = 'settled';
      this.running--;
      this.pump();
    });
  }
}
