import type { Logger } from 'pino';

/**
 * Runs `stop` once on SIGTERM/SIGINT, then exits. A second signal, or `stop` taking longer than
 * timeoutMs, forces the exit so that a stuck dependency cannot keep a process alive forever.
 */
export function onShutdownSignal(logger: Logger, stop: () => Promise<void>, timeoutMs = 30_000): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down gracefully');
    const timer = setTimeout(() => {
      logger.error('graceful shutdown timed out');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => {
        logger.info('shutdown complete');
        process.exit(0);
      },
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}
