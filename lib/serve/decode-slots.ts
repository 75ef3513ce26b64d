// How many images `mnq serve` decodes at once. sharp decodes on libuv's thread pool, which also carries the
// models' runs, and on the same cores as the models' threads: while a batch computes, `busy` decodes run (the
// cores its threads leave free, at least 1), otherwise `idle` (every core); both stay below libuv's pool size, so
// a model run never waits behind queued decodes. The others wait in arrival order. (The limits come from
// decodeConcurrency in lib/image/decode-threads.ts, as for `classify`; a server shares one set of slots between
// all its models.)
export interface DecodeLimits {
  busy: number;
  idle: number;
}

/** A first-in first-out limit on concurrent decodes, lower while a model computes. */
export class DecodeSlots {
  private running = 0;
  private computing = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limits: DecodeLimits) {}

  /** Decodes waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `decode` in a slot (waiting for one first). */
  async run<T>(decode: () => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.pump();
    });
    try {
      return await decode();
    } finally {
      this.running--;
      this.pump();
    }
  }

  /** A model batch started computing. */
  computeStarted(): void {
    this.computing++;
  }

  /** A model batch finished. */
  computeFinished(): void {
    this.computing--;
    this.pump();
  }

  private pump(): void {
    const limit = this.computing > 0 ? this.limits.busy : this.limits.idle;
    while (this.waiting.length && this.running < limit) {
      this.running++;
      (this.waiting.shift() as () => void)();
    }
  }
}
