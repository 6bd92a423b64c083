// The published package, as an outside project gets it: `npm pack` (its prepack runs the build), the
// tarball installed offline into a fresh project in the OS temp dir (no link to this checkout's
// node_modules), then plain `node` ESM and CommonJS scripts, a strict TypeScript consumer (no
// skipLibCheck) and the tarball's file list. Also: packages/sdk/API.md is what `npm run docs:sdk`
// generates from the built declarations (fails when a typed method was added without regenerating).
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { renderApiMarkdown } from '../scripts/api-docs.ts';

const run = promisify(execFile);
const sdkDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = path.resolve(sdkDir, '..', '..');
const tsc = path.join(repoRoot, 'node_modules', '.bin', 'tsc');

let work: string; // temp dir: the tarball and the consumer project
let consumer: string;
let tarball: string;

async function sh(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, NODE_OPTIONS: '' } });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function must(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await sh(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.code}:\n${r.out}`);
  return r.out;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'meterline-sdk-pack-'));
  // The build (`npm run build`'s tsdown) into this run's own directory, not packages/sdk/dist, so
  // engineers running the suite at once in one checkout do not overwrite each other's build. The
  // package is staged there as `npm pack` sees packages/sdk: package.json (its `files`), README, LICENSE.
  const staged = path.join(work, 'sdk');
  await must('npx', ['tsdown', '--out-dir', path.join(staged, 'dist'), '--log-level', 'warn'], sdkDir);
  for (const f of ['package.json', 'README.md', 'LICENSE']) await copyFile(path.join(sdkDir, f), path.join(staged, f));
  await must('npm', ['pack', '--ignore-scripts', '--pack-destination', work], staged);
  const tgz = (await readdir(work)).filter((f) => f.endsWith('.tgz'));
  expect(tgz).toHaveLength(1);
  tarball = path.join(work, tgz[0]!);
  consumer = path.join(work, 'consumer');
  await mkdir(consumer);
  await writeFile(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  await must('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock'], consumer);
}, 240_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

// Timeouts are for a loaded machine (several suites at once); alone the whole file takes ~20 s.
describe('@meterline/sdk as an installed package', { timeout: 120_000 }, () => {
  test('the tarball holds only dist/, README.md, LICENSE and package.json', async () => {
    const files = (await must('tar', ['-tzf', tarball], work)).split('\n').filter((f) => f && !f.endsWith('/'));
    const stray = files.filter((f) => !/^package\/(dist\/[^/]+|README\.md|LICENSE|package\.json)$/.test(f));
    expect(stray).toEqual([]);
    expect(files).toEqual(
      expect.arrayContaining([
        'package/dist/index.mjs',
        'package/dist/index.cjs',
        'package/dist/index.d.mts',
        'package/dist/index.d.cts',
        'package/LICENSE',
      ]),
    );
    expect(files.filter((f) => /\.ts$/.test(f) && !/\.d\.[cm]?ts$/.test(f))).toEqual([]); // no source, no tests
  });

  test('zero runtime dependencies; declarations import nothing (the contracts types are inlined)', async () => {
    const pkg = JSON.parse(await readFile(path.join(consumer, 'node_modules/@meterline/sdk/package.json'), 'utf8'));
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.peerDependencies ?? {}).toEqual({});
    expect(pkg.license).toBe('Apache-2.0');
    for (const file of ['index.d.mts', 'index.d.cts']) {
      const dts = await readFile(path.join(consumer, 'node_modules/@meterline/sdk/dist', file), 'utf8');
      expect(dts).not.toMatch(/\bfrom\s+['"]|import\(\s*['"]|require\(/);
      expect(dts).toMatch(/\bCheckResult\b/);
    }
    for (const file of ['index.mjs', 'index.cjs']) {
      const js = await readFile(path.join(consumer, 'node_modules/@meterline/sdk/dist', file), 'utf8');
      const imports = [...js.matchAll(/(?:from\s+|require\()["']([^"']+)["']/g)].map((m) => m[1]);
      expect(imports.filter((s) => !s!.startsWith('node:'))).toEqual([]);
      // No top-level await (CJS cannot have it, require() of ESM neither); rolldown's CJS build also fails on one.
      expect(js).not.toMatch(/\bawait import\(/);
    }
  });

  // Both scripts: the exports are there, a client answers a call through a fake fetch, and a Standard
  // Webhooks delivery signed here verifies (and a tampered one does not).
  const script = (load: string) => `${load}
const { createHmac } = require('node:crypto');
(async () => {
  for (const f of [Meterline, MeterlineError, verifyWebhook]) if (typeof f !== 'function') throw new Error('not a function');
  const calls = [];
  const client = new Meterline({
    apiKey: 'k_test',
    billingUrl: 'http://billing.invalid',
    fetch: async (url, init) => {
      calls.push([url, init.method, init.headers['X-API-KEY'] ?? init.headers['x-api-key']]);
      return new Response(JSON.stringify({ allowed: true, customer_id: 'c1', feature_id: 'f1' }), { status: 200, headers: { 'content-type': 'application/json' } });
    },
  });
  const r = await client.check({ customer_id: 'c1', feature_id: 'f1' });
  if (r.allowed !== true || calls.length !== 1 || calls[0][0] !== 'http://billing.invalid/v1/check') throw new Error('check: ' + JSON.stringify([r, calls]));
  const key = Buffer.from('0123456789abcdef0123456789abcdef');
  const secret = 'whsec_' + key.toString('base64');
  const body = JSON.stringify({ id: 'msg_1', type: 'invoice.paid', data: {} });
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = createHmac('sha256', key).update('msg_1.' + ts + '.' + body).digest('base64');
  const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': ts, 'webhook-signature': 'v1,' + sig };
  if (verifyWebhook(body, headers, secret).id !== 'msg_1') throw new Error('verify');
  let rejected = false;
  try { verifyWebhook(body + ' ', headers, secret); } catch (e) { rejected = e instanceof Error; }
  if (!rejected) throw new Error('tampered payload verified');
  console.log('ok', typeof MeterlineError);
})().catch((e) => { console.error(e); process.exit(1); });
`;

  test('plain node: ESM import', async () => {
    // ESM: no require() in scope, so the script takes it from node:module.
    const src = `import { Meterline, MeterlineError, verifyWebhook } from '@meterline/sdk';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
${script('')}`;
    await writeFile(path.join(consumer, 'esm.mjs'), src);
    expect(await must(process.execPath, ['esm.mjs'], consumer)).toContain('ok function');
  });

  test('plain node: CommonJS require', async () => {
    await writeFile(
      path.join(consumer, 'cjs.cjs'),
      script("const { Meterline, MeterlineError, verifyWebhook } = require('@meterline/sdk');"),
    );
    expect(await must(process.execPath, ['cjs.cjs'], consumer)).toContain('ok function');
  });

  test('a strict TypeScript consumer (nodenext, no skipLibCheck) type-checks, and a type error is reported', async () => {
    const tsconfig = (files: string[]) =>
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2022', 'dom'],
          types: [],
          noEmit: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
        },
        files,
      });
    const body = `
const client = new Meterline({ apiKey: 'k', maxRetries: 2 });
export async function use(): Promise<string> {
  const r: CheckResult = await client.check({ customer_id: 'c1', feature_id: 'f1' });
  const allowed: boolean = r.allowed;
  const id: Customer['customer_id'] = 'c1';
  const e: Entitlement | undefined = (await client.entitlements(id)).data[0];
  try {
    await client.track({ event_name: 'api_call', customer_id: id, properties: { n: 1 } });
  } catch (err) {
    if (err instanceof MeterlineError) return String(err.status);
  }
  return \`\${allowed} \${e?.feature_id ?? ''}\`;
}
`;
    await writeFile(
      path.join(consumer, 'use.mts'),
      `import { Meterline, MeterlineError, type CheckResult, type Customer, type Entitlement } from '@meterline/sdk';${body}`,
    );
    await writeFile(
      path.join(consumer, 'use.cts'),
      `import { Meterline, MeterlineError, type CheckResult, type Customer, type Entitlement } from '@meterline/sdk';${body}`,
    );
    await writeFile(
      path.join(consumer, 'bad.mts'),
      `import type { Customer } from '@meterline/sdk';\nexport const n: number = ({} as Customer).customer_id;\n`,
    );
    // One tsc run (each run re-checks lib.dom.d.ts, no skipLibCheck): exactly one error, the deliberate
    // one, so the consumers and the declarations are clean and type errors do surface.
    await writeFile(path.join(consumer, 'tsconfig.json'), tsconfig(['use.mts', 'use.cts', 'bad.mts']));
    const r = await sh(tsc, ['-p', 'tsconfig.json'], consumer);
    const errors = r.out.split('\n').filter((l) => /error TS\d+/.test(l));
    expect(errors, r.out).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad\.mts\(2,\d+\): error TS2322/);
    expect(r.code).not.toBe(0);
  });

  test('`npm pack` in packages/sdk itself would ship the same files (its `files` and prepack)', async () => {
    const pkg = JSON.parse(await readFile(path.join(sdkDir, 'package.json'), 'utf8'));
    expect(pkg.files).toEqual(['dist', 'README.md', 'LICENSE']);
    expect(pkg.scripts.prepack).toBe('npm run build');
    expect(pkg.scripts.build).toBe('tsdown');
    // --ignore-scripts: no build into the shared dist/; whatever dist/ holds, nothing outside the list goes in.
    const dry = JSON.parse((await must('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], sdkDir)).trim()) as {
      files: { path: string }[];
    }[];
    const stray = dry[0]!.files.map((f) => f.path).filter((f) => !/^(dist\/[^/]+|README\.md|LICENSE|package\.json)$/.test(f));
    expect(stray).toEqual([]);
  });

  test('API.md is what `npm run docs:sdk` generates from the built declarations', async () => {
    const committed = await readFile(path.join(sdkDir, 'API.md'), 'utf8');
    const generated = renderApiMarkdown(path.join(work, 'sdk', 'dist', 'index.d.mts'));
    expect(committed, 'packages/sdk/API.md is stale: run `npm run docs:sdk`').toBe(generated);
  });
});
