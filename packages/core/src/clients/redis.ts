import { Redis } from 'ioredis';

export type { Redis };

/**
 * A Redis client that fails fast instead of queueing commands forever while Redis is down, so that
 * callers can answer 503 promptly; it keeps reconnecting in the background.
 */
export function createRedis(url: string, opts: { name?: string } = {}): Redis {
  return new Redis(url, {
    connectionName: opts.name ?? 'meterline',
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
    lazyConnect: false,
  });
}
