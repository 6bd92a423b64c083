import { randomBytes } from 'node:crypto';
import { generateApiKey, type PgPool } from '@meterline/core';

export function uniqueId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

/** Inserts an organization with one API key straight into Postgres; returns the plaintext key. */
export async function createTestOrganization(
  pool: PgPool,
  opts: { name?: string; segmentSharedSecret?: string } = {},
): Promise<{ organizationId: string; apiKey: string }> {
  const organizationId = uniqueId('org');
  const key = generateApiKey();
  await pool.query('INSERT INTO organizations (id, name, segment_shared_secret) VALUES ($1, $2, $3)', [
    organizationId,
    opts.name ?? organizationId,
    opts.segmentSharedSecret ?? null,
  ]);
  await pool.query('INSERT INTO api_keys (id, organization_id, prefix, key_hash) VALUES ($1, $2, $3, $4)', [
    uniqueId('key'),
    organizationId,
    key.prefix,
    key.hash,
  ]);
  return { organizationId, apiKey: key.key };
}
