// The Redis connection of `mnq worker` and `mnq submit`: a redis:// or rediss:// URL, and ioredis settings
// that ride out a Redis restart: commands wait for the connection to come back instead of failing
// (maxRetriesPerRequest: null), and reconnection is retried every 0.2-2 s for as long as it takes; and the
// logging of the errors BullMQ reports meanwhile.
import type { ConnectionOptions } from 'bullmq';

/** BullMQ connection options for a Redis URL; throws on a URL that is not redis:// or rediss://. */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--redis must be a URL like redis://host:6379, got '${url}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`--redis must be a redis:// or rediss:// URL, got '${url}'`);
  }
  return {
    url,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

/**
 * Logging of a BullMQ client's 'error' events (repeated while Redis is away: once per message per 10 s) and
 * of the connection coming back afterwards.
 */
export function errorLog(log: (message: string) => void, quietMs = 10000): { error(e: Error): void; ready(): void } {
  const seen = new Map<string, number>();
  let troubled = false;
  return {
    error(e: Error): void {
      const now = Date.now();
      const m = e?.message ?? String(e);
      if (now - (seen.get(m) ?? -Infinity) >= quietMs) log(`Redis: ${m}`);
      seen.set(m, now);
      troubled = true;
    },
    ready(): void {
      if (troubled) log('Redis: connected again');
      troubled = false;
      seen.clear();
    },
  };
}
