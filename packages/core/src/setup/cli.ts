import { loadConfig } from '../config.ts';
import { setupBackingServices } from './setup.ts';

await setupBackingServices(loadConfig(), (msg) => console.error(`[setup] ${msg}`));
