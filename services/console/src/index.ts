export { buildConsole, startConsole, type ConsoleDeps, type ConsoleHandle } from './app.ts';
export { buildBundle, bundleIsStale, ensureBundle } from './assets.ts';
export { routeFor } from './upstreams.ts';
