// ClickHouse access shared by the services. Debian's ClickHouse 18.16 has no server-side query
// parameters, so values are inlined with the escaping helpers below. Nothing else may build SQL
// from user input: use sqlString / sqlNumber / sqlIdentifier for every interpolated value.
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import type { ClickHouseConfig } from '../config.ts';

export type { ClickHouseClient, ClickHouseSettings };

/**
 * `settings`: sent with every request of this client (a query's own clickhouse_settings add to them).
 * Only for writers: a readonly=1 user may not change settings.
 */
export function createClickHouse(
  cfg: ClickHouseConfig,
  opts: { database?: string | null; settings?: ClickHouseSettings } = {},
): ClickHouseClient {
  return createClient({
    ...(opts.settings ? { clickhouse_settings: opts.settings } : {}),
    url: cfg.url,
    username: cfg.username,
    password: cfg.password,
    // null = no default database (used to create it)
    ...(opts.database === null ? {} : { database: opts.database ?? cfg.database }),
    request_timeout: 60_000,
    compression: { request: false, response: false },
    // every caller handles (and logs, as JSON) its errors; the client's own plain-text error log
    // would print each retried failure a second time
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** A ClickHouse string literal: backslash and quote escaped, control characters as escapes. */
export function sqlString(value: string): string {
  let out = "'";
  for (const ch of value) {
    switch (ch) {
      case '\\':
        out += '\\\\';
        break;
      case "'":
        out += "\\'";
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      case '\0':
        out += '\\0';
        break;
      default:
        out += ch;
    }
  }
  return out + "'";
}

/**
 * Whether a number can be written as a SQL literal that ClickHouse 18.16 and current LTS both parse
 * to the same value: finite, and 0 or of normal magnitude (18.16 rejects subnormals like 5e-324 with a
 * syntax error). JavaScript prints every such number in a form both accept (`1e+21`, `-2.5e-7`).
 */
export function isSqlNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && (value === 0 || Math.abs(value) >= MIN_NORMAL_NUMBER);
}

/** Smallest positive normal double; smaller magnitudes (subnormals) are not parseable by 18.16. */
export const MIN_NORMAL_NUMBER = 2.2250738585072014e-308;

/** A number literal; anything else (NaN, Infinity, subnormals, strings) is refused. */
export function sqlNumber(value: number): string {
  if (!isSqlNumber(value)) throw new TypeError(`not a number ClickHouse can parse as a literal: ${String(value)}`);
  // -0 prints as "0"; both compare equal to 0 in ClickHouse
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

/**
 * Formats epoch milliseconds as ClickHouse DateTime text (UTC, seconds precision). ClickHouse parses
 * such text in the zone of the column or function it meets (a DateTime without a zone: the SERVER's):
 * only for DateTime('UTC') columns or `toDateTime(text, 'UTC')`. Writers send toClickHouseEpochSeconds.
 */
export function toClickHouseDateTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * Epoch milliseconds as the epoch seconds a DateTime holds: a JSONEachRow number (or `toDateTime(n)` in
 * SQL) means the same instant whatever the column's or the server's time zone (docs/analytics.md).
 */
export function toClickHouseEpochSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}
