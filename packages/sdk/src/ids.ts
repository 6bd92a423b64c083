// Idempotency ids: node:crypto's randomUUID (Node 18+, Bun and Deno have it; faster than the Web
// Crypto global on Node). A static import, no top-level await: the module loads synchronously.
import { randomUUID } from 'node:crypto';

export const randomId = (): string => randomUUID();
