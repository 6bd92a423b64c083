// The SDK's wire types come from @meterline/contracts, but only as types: it must stay free of runtime
// dependencies (README promise), so every reference to the contracts is `import type` / `export type`.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';

const src = new URL('../src/', import.meta.url);

describe('sdk dependencies', () => {
  it('has no runtime dependency and imports @meterline/contracts as types only', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.peerDependencies ?? {}).toEqual({});
    let references = 0;
    for (const f of readdirSync(src).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(new URL(f, src), 'utf8');
      // every import/export statement that names a package (not a relative file)
      for (const m of text.matchAll(/^(import|export)\s+([^;]*?)\s+from\s+'([^'.][^']*)'/gms)) {
        if (m[3]!.startsWith('node:')) continue;
        expect(m[3], `${f}: ${m[0].slice(0, 80)}`).toBe('@meterline/contracts');
        expect(m[2], `${f} must use import type / export type`).toMatch(/^type\s/);
        references++;
      }
    }
    expect(references).toBeGreaterThan(0);
  });
});
