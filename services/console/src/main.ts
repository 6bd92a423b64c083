// Console process: loadConfig, start, graceful stop on SIGTERM/SIGINT.
import { createLogger, loadConfig, onShutdownSignal } from '@meterline/core';
import { startConsole } from './app.ts';

const config = loadConfig();
const logger = createLogger('console', config.logLevel);
const consoleService = await startConsole(config, { logger });
onShutdownSignal(logger, consoleService.stop);
