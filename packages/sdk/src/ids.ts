// crypto.randomUUID: global in Node 19+, Bun, Deno and browsers; Node 18 gets it from node:crypto.
const webcrypto: { randomUUID(): string } = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto?.randomUUID
  ? (globalThis as unknown as { crypto: { randomUUID(): string } }).crypto
  : ((await import('node:crypto')).webcrypto as unknown as { randomUUID(): string });

export const randomId = (): string => webcrypto.randomUUID();
