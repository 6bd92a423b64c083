// Ingest gateway process: loadConfig, start, graceful stop on SIGTERM/SIGINT.
import { createLogger, loadConfig, onShutdownSignal } from '@meterline/core';
import { startGateway } from './app.ts';

const config = loadConfig();
const logger = createLogger('gateway', config.logLevel);
const gateway = await startGateway(config, { logger });
onShutdownSignal(logger, gateway.stop);
