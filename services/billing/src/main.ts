import { loadConfig, onShutdownSignal } from '@meterline/core';
import { startBilling } from './app.ts';

const config = loadConfig();
const billing = await startBilling(config);
billing.deps.logger.info({ url: billing.url }, 'billing listening');
onShutdownSignal(billing.deps.logger, billing.stop);
