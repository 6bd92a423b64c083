// Build of the published package (`npm run build`): ESM (dist/index.mjs) + CJS (dist/index.cjs) with
// bundled declarations (dist/index.d.mts, dist/index.d.cts). Inside the monorepo nothing uses dist:
// workspaces, vitest and tsc resolve src/index.ts through the "@meterline/source" export condition
// (see package.json and README.md "Install and build").
//
// Why tsdown (rolldown + rolldown-plugin-dts): one tool for ESM + CJS + bundled .d.mts/.d.cts, and
// its declaration step runs the repo's own TypeScript 7 binary (tsgo) instead of needing the TS 5 JS
// API (tsup/api-extractor/dts-bundle-generator do). Pinned to 0.21.x: the last line that runs on
// Node 20 (0.22+ needs Node 22.18), with a custom tsgo path (0.21's default looks for
// @typescript/native-preview).
import { createRequire } from 'node:module';
import path from 'node:path';
import { defineConfig, type UserConfig } from 'tsdown';

const require = createRequire(import.meta.url);
// TypeScript 7 is the native compiler (tsgo): its package has no JS compiler API, only the binary.
// rolldown-plugin-dts runs it to emit declarations, then bundles them itself (no TypeScript API needed).
const tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');

const config: UserConfig = defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  platform: 'node',
  target: 'node18',
  tsconfig: '../tsconfig.sdk-build.json',
  // Declarations: the contracts' types (a workspace, so its source is compiled like ours) and the
  // TypeBox types they are Static<> of are inlined, so the package needs nothing at install. TypeBox
  // is the only thing from node_modules allowed in (types only: no runtime code of it or of the
  // contracts reaches dist/*.js, the test checks the imports); anything else fails the build.
  dts: { tsgo: { path: tsc } },
  deps: { onlyBundle: ['@sinclair/typebox'] },
  clean: true,
  outDir: 'dist',
});
export default config;
