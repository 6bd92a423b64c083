// ClickHouse access shared by the services. Debian's ClickHouse 18.16 has no server-side query
// parameters, so values are inlined with the escaping helpers below. Nothing else may build SQL
// from user input: use sqlString / sqlNumber / sqlIdentifier for every interpolated value.
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { ClickHouseConfig } from '../config.ts';

export type { ClickHouseClient };

export function createClickHouse(cfg: ClickHouseConfig, opts: { database?: string | null } = {}): ClickHouseClient {
  return createClient({
    url: cfg.url,
    username: cfg.username,
    password: cfg.password,
    // null = no default database (used to create it)
    ...(opts.database === null ? {} : { database: opts.database ?? cfg.database }),
    request_timeout: 60_000,
    compression: { request: false, response: false },
  });
}

/** A ClickHouse string literal: backslash and quote escaped, control characters as escapes. */
export function sqlString(value: string): string {
  let out = "'";
  for (const ch of value) {
    switch (ch) {
      case '\\': out += '\\\\'; break;
      case "'": out += "\\'"; break;
      case '\n': out += '\\n'; break;
      case '\r': out += '\\r'; break;
      case '\t': out += '\\t'; break;
      case '\0': out += '\\0'; break;
      default: out += ch;
    }
  }
  return out + "'";
}

/** A finite number literal; anything else (NaN, Infinity, strings) is refused. */
export function sqlNumber(value: number): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`not a finite number: ${value}`);
  return String(value);
}

/** An identifier (database, table, column). Only [A-Za-z_][A-Za-z0-9_]* is allowed. */
export function sqlIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TypeError(`invalid SQL identifier: ${JSON.stringify(name)}`);
  return name;
}

/** A string array literal: ['a','b']. */
export function sqlStringArray(values: readonly string[]): string {
  return `[${values.map(sqlString).join(',')}]`;
}

/** Formats epoch milliseconds as ClickHouse DateTime text (UTC, seconds precision). */
export function toClickHouseDateTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}
