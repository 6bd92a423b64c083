// npm run build:console: bundles the console's web app into services/console/dist.
import { buildBundle, DIST_DIR } from './assets.ts';

const started = performance.now();
await buildBundle();
console.log(`console bundle built in ${Math.round(performance.now() - started)} ms: ${DIST_DIR}`);
