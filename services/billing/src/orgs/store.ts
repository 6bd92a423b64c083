import { randomBytes } from 'node:crypto';
import { generateApiKey, withTransaction, type PgPool } from '@meterline/core';

export const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString('base64url')}`;

export interface ApiKeyRow {
  key_id: string;
  name: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export async function insertOrganization(pool: PgPool, name: string, keyName = 'default') {
  const organizationId = newId('org');
  const key = generateApiKey();
  const keyId = newId('key');
  await withTransaction(pool, async (c) => {
    await c.query('INSERT INTO organizations (id, name) VALUES ($1, $2)', [organizationId, name]);
    await c.query('INSERT INTO api_keys (id, organization_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)', [
      keyId,
      organizationId,
      keyName,
      key.prefix,
      key.hash,
    ]);
  });
  return { organization_id: organizationId, name, api_key: key.key, key_id: keyId, prefix: key.prefix };
}

export async function organizationExists(pool: PgPool, orgId: string): Promise<boolean> {
  const { rowCount } = await pool.query('SELECT 1 FROM organizations WHERE id = $1 AND archived_at IS NULL', [orgId]);
  return (rowCount ?? 0) > 0;
}

export async function getOrganization(pool: PgPool, orgId: string) {
  const { rows } = await pool.query<{ id: string; name: string; created_at: Date }>(
    'SELECT id, name, created_at FROM organizations WHERE id = $1',
    [orgId],
  );
  const r = rows[0];
  return r ? { organization_id: r.id, name: r.name, created_at: r.created_at.toISOString() } : null;
}

export async function insertApiKey(pool: PgPool, orgId: string, name: string) {
  const key = generateApiKey();
  const keyId = newId('key');
  const { rows } = await pool.query<{ created_at: Date }>(
    'INSERT INTO api_keys (id, organization_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5) RETURNING created_at',
    [keyId, orgId, name, key.prefix, key.hash],
  );
  return { key_id: keyId, name, prefix: key.prefix, api_key: key.key, created_at: rows[0]!.created_at.toISOString() };
}

export async function listApiKeys(pool: PgPool, orgId: string, limit: number, offset: number): Promise<ApiKeyRow[]> {
  const { rows } = await pool.query<{ id: string; name: string; prefix: string; created_at: Date; revoked_at: Date | null }>(
    'SELECT id, name, prefix, created_at, revoked_at FROM api_keys WHERE organization_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3',
    [orgId, limit + 1, offset],
  );
  return rows.map((r) => ({
    key_id: r.id,
    name: r.name,
    prefix: r.prefix,
    created_at: r.created_at.toISOString(),
    revoked_at: r.revoked_at?.toISOString() ?? null,
  }));
}

/** Revokes a key of this organization; false when no such (active or revoked) key exists here. */
export async function revokeApiKey(pool: PgPool, orgId: string, keyId: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    'UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE organization_id = $1 AND id = $2',
    [orgId, keyId],
  );
  return (rowCount ?? 0) > 0;
}

/** Archives an organization (its keys stop working); null when it does not exist. Idempotent. */
export async function archiveOrganization(pool: PgPool, orgId: string): Promise<{ archived_at: string } | null> {
  const { rows } = await pool.query<{ archived_at: Date }>(
    'UPDATE organizations SET archived_at = coalesce(archived_at, now()) WHERE id = $1 RETURNING archived_at',
    [orgId],
  );
  return rows[0] ? { archived_at: rows[0].archived_at.toISOString() } : null;
}

/**
 * Sets (or, with null, clears) the organization's Segment shared secret, stored as the gateway reads it
 * (organizations.segment_shared_secret, plain text: the gateway needs it to compute the HMAC). Null when
 * the organization does not exist or is archived.
 */
export async function setSegmentSharedSecret(pool: PgPool, orgId: string, secret: string | null) {
  const { rows } = await pool.query<{ set: boolean }>(
    'UPDATE organizations SET segment_shared_secret = $2 WHERE id = $1 AND archived_at IS NULL RETURNING segment_shared_secret IS NOT NULL AS set',
    [orgId, secret],
  );
  return rows[0] ? { organization_id: orgId, shared_secret_set: rows[0].set } : null;
}

export async function getSegmentSettings(pool: PgPool, orgId: string) {
  const { rows } = await pool.query<{ set: boolean }>(
    "SELECT coalesce(segment_shared_secret, '') <> '' AS set FROM organizations WHERE id = $1",
    [orgId],
  );
  return rows[0] ? { organization_id: orgId, shared_secret_set: rows[0].set } : null;
}
