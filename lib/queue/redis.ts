// The Redis connection of `mnq worker` and `mnq submit`: a redis:// or rediss:// URL, and ioredis settings
// that ride out a Redis restart: commands wait for the connection to come back instead of failing
// (maxRetriesPerRequest: null), and reconnection is retried every 0.2-2 s for as long as it takes.
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
