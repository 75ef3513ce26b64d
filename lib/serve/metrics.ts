// The Prometheus metrics of `mnq serve` (GET /metrics), in a registry of the server's own (so that several
// servers in one process keep apart): HTTP requests, errors and latency; per model batch sizes, batch compute
// time, images, images/s over the last 10 s, queue depth and rejected requests; and the process' memory and CPU.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the model metrics read from a served model when scraped. */
export interface ModelGauges {
  readonly name: string;
  /** images reserved or queued */
  readonly queueDepth: number;
}

/** Why a request was turned away. */
export type RejectReason = 'queue_full' | 'timeout' | 'cancelled' | 'draining';

const RATE_WINDOW_MS = 10_000;

export class ServerMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpErrors: Counter<'route' | 'status'>;
  readonly httpDuration: Histogram<'route'>;
  readonly batchSize: Histogram<'model'>;
  readonly batchDuration: Histogram<'model'>;
  readonly images: Counter<'model'>;
  readonly batches: Counter<'model'>;
  readonly rejected: Counter<'model' | 'reason'>;
  private readonly models: ModelGauges[] = [];
  /** per model: [time ms, images] of the batches finished in the last RATE_WINDOW_MS */
  private readonly recent = new Map<string, [number, number][]>();
  private readonly startedAt = performance.now();

  constructor() {
    const registers = [this.registry];
    this.httpRequests = new Counter({ name: 'mnq_http_requests_total', help: 'HTTP requests answered, by method, route and status code', labelNames: ['method', 'route', 'status'], registers });
    this.httpErrors = new Counter({ name: 'mnq_http_request_errors_total', help: 'HTTP requests answered with a 4xx or 5xx status code', labelNames: ['route', 'status'], registers });
    this.httpDuration = new Histogram({
      name: 'mnq_http_request_duration_seconds', help: 'Time from receiving a request to sending its response, by route', labelNames: ['route'], registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.batchSize = new Histogram({ name: 'mnq_batch_size', help: 'Images per model run', labelNames: ['model'], registers, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256] });
    this.batchDuration = new Histogram({
      name: 'mnq_batch_duration_seconds', help: 'Compute time of one model run (a batch)', labelNames: ['model'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    });
    this.images = new Counter({ name: 'mnq_images_total', help: 'Images (batch items) computed', labelNames: ['model'], registers });
    this.batches = new Counter({ name: 'mnq_batches_total', help: 'Model runs (batches)', labelNames: ['model'], registers });
    this.rejected = new Counter({ name: 'mnq_rejected_total', help: 'Requests turned away: queue_full (429), timeout, cancelled (client gone), draining (503)', labelNames: ['model', 'reason'], registers });
    const models = this.models;
    new Gauge({
      name: 'mnq_queue_depth', help: 'Images admitted and waiting for their batch (decoding or queued)', labelNames: ['model'], registers,
      collect() {
        for (const m of models) this.set({ model: m.name }, m.queueDepth);
      },
    });
    const rate = (model: string): number => this.imagesPerSecond(model);
    new Gauge({
      name: 'mnq_images_per_second', help: `Images computed per second over the last ${RATE_WINDOW_MS / 1000} s`, labelNames: ['model'], registers,
      collect() {
        for (const m of models) this.set({ model: m.name }, rate(m.name));
      },
    });
    new Gauge({
      name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes', registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Gauge({
      name: 'nodejs_heap_size_used_bytes', help: 'V8 heap used, bytes', registers,
      collect() {
        this.set(process.memoryUsage().heapUsed);
      },
    });
    new Gauge({
      name: 'process_cpu_seconds_total', help: 'User and system CPU time of the process, seconds', registers,
      collect() {
        const u = process.cpuUsage();
        this.set((u.user + u.system) / 1e6);
      },
    });
  }

  /** Adds a model's gauges (queue depth, images/s). */
  addModel(model: ModelGauges): void {
    this.models.push(model);
    this.recent.set(model.name, []);
  }

  /** A batch of `size` images of `model` finished computing in `seconds`. */
  batchDone(model: string, size: number, seconds: number): void {
    this.batchSize.observe({ model }, size);
    this.batchDuration.observe({ model }, seconds);
    this.images.inc({ model }, size);
    this.batches.inc({ model });
    const now = performance.now();
    const recent = this.recent.get(model);
    if (recent) {
      recent.push([now, size]);
      this.prune(recent, now);
    }
  }

  /** Images per second of `model` over the last 10 s (or since the server started, if sooner). */
  imagesPerSecond(model: string): number {
    const recent = this.recent.get(model);
    if (!recent) return 0;
    const now = performance.now();
    this.prune(recent, now);
    const window = Math.min(RATE_WINDOW_MS, Math.max(1, now - this.startedAt));
    let n = 0;
    for (const [, size] of recent) n += size;
    return (n * 1000) / window;
  }

  /** An HTTP response went out. */
  response(method: string, route: string, status: number, seconds: number): void {
    const s = String(status);
    this.httpRequests.inc({ method, route, status: s });
    this.httpDuration.observe({ route }, seconds);
    if (status >= 400) this.httpErrors.inc({ route, status: s });
  }

  private prune(recent: [number, number][], now: number): void {
    let drop = 0;
    while (drop < recent.length && now - recent[drop][0] > RATE_WINDOW_MS) drop++;
    if (drop) recent.splice(0, drop);
  }
}
