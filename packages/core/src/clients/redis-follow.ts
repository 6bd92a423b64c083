// Following a Redis pub/sub channel for cache invalidation, shared by every cache that must forget
// what another process changed (API keys, billing's catalog). A subscriber made with
// `redis.duplicate()` runs its own SUBSCRIBE loop (autoResubscribe off), so `onSubscribed` fires only
// once a subscription is confirmed — a cache that clears itself there cannot miss anything published
// afterwards. `onLost` fires when the connection drops (messages may be missed until onSubscribed).
// The follower closes with close(), or when `redis` itself ends.
import type { Redis } from './redis.ts';

export interface ChannelFollowHandlers {
  onMessage: (message: string) => void;
  onSubscribed: () => void;
  onLost: () => void;
  onError?: (err: Error) => void;
}

export interface ChannelFollower {
  /** Whether a subscription is confirmed right now. */
  readonly subscribed: boolean;
  /** The subscriber's connection name (CLIENT LIST), e.g. to kill it in a test. */
  readonly connectionName: string;
  close(): void;
}

export function followChannel(
  redis: Redis,
  channel: string,
  name: string,
  h: ChannelFollowHandlers,
  opts: { reconnectDelayMs?: number } = {},
): ChannelFollower {
  const onError = h.onError ?? (() => undefined);
  const connectionName = `${redis.options.connectionName ?? 'meterline'}-${name}`;
  const sub = redis.duplicate({
    connectionName,
    autoResubscribe: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: undefined,
    lazyConnect: false,
    ...(opts.reconnectDelayMs !== undefined ? { retryStrategy: () => opts.reconnectDelayMs } : {}),
  });
  let subscribed = false;
  let closed = false;
  sub.on('error', (err: Error) => onError(err));
  sub.on('message', (ch: string, message: string) => {
    if (ch === channel) h.onMessage(message);
  });
  sub.on('close', () => {
    if (closed) return;
    subscribed = false;
    h.onLost();
  });
  sub.on('ready', () => {
    sub.subscribe(channel).then(
      () => {
        if (closed) return;
        subscribed = true;
        h.onSubscribed();
      },
      (err: Error) => {
        onError(err);
        sub.disconnect(true); // reconnect and try again
      },
    );
  });
  const follower: ChannelFollower = {
    get subscribed() {
      return subscribed;
    },
    connectionName,
    close() {
      if (closed) return;
      closed = true;
      sub.disconnect();
    },
  };
  redis.once('end', () => follower.close());
  return follower;
}
