import { createLogger, loadConfig, onShutdownSignal } from '@meterline/core';
import { startAggregator } from './app.ts';

const config = loadConfig();
const logger = createLogger('aggregator', config.logLevel);
const agg = await startAggregator(config, { logger });
onShutdownSignal(logger, () => agg.stop());
