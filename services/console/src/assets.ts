// The single-page app's bundle: web/ (Preact + htm, uPlot) bundled by esbuild into dist/, offline, from
// the packages in node_modules — nothing is fetched from a CDN at build or run time. `npm run
// build:console` builds it; the service (and the test setup) rebuild it when a source file is newer than
// the bundle, so a fresh clone's `npm start` and `npm test` work without a separate step.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

export const WEB_DIR = resolve(import.meta.dirname, '../web');
export const DIST_DIR = resolve(import.meta.dirname, '../dist');
const OUTPUTS = ['app.js', 'app.css'];

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** True when a bundle output is missing or older than a source file. */
export function bundleIsStale(): boolean {
  const outputs = OUTPUTS.map((f) => join(DIST_DIR, f));
  if (!outputs.every(existsSync)) return true;
  const built = Math.min(...outputs.map((p) => statSync(p).mtimeMs));
  return newestMtime(WEB_DIR) > built;
}

export async function buildBundle(): Promise<void> {
  await build({
    entryPoints: { app: join(WEB_DIR, 'main.ts') },
    outdir: DIST_DIR,
    bundle: true,
    minify: true,
    sourcemap: 'linked',
    format: 'esm',
    target: ['es2022'],
    legalComments: 'linked',
    logLevel: 'warning',
  });
}

/** Builds the bundle when stale; returns whether it built. */
export async function ensureBundle(): Promise<boolean> {
  if (!bundleIsStale()) return false;
  await buildBundle();
  return true;
}
