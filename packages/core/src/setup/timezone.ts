// The ClickHouse server's time zone (docs/analytics.md "Server time zone"). Meterline writes instants
// (epoch seconds) and its own SQL names 'UTC' wherever a day or month is cut, but a DateTime column
// without a zone (events.time_created, a key column 18.16 cannot alter) prints and is cut into days in
// the server's zone, and rows written before migration 0007 on a non-UTC server were parsed in it.
// Setup therefore refuses a non-UTC server unless CLICKHOUSE_ALLOW_NON_UTC=true (then it warns).
import type { ClickHouseClient } from '../clients/clickhouse.ts';

export interface ServerTimezone {
  timezone: string;
  /** The zone's offset is 0 at every probed instant (UTC, Etc/UTC, UCT, Zulu, GMT, ...). */
  utc: boolean;
}

// winter and summer instants of a few years: a zone that keeps UTC's offset at all of them is UTC for
// every practical purpose (Europe/London is +1 in summer, so it is not)
const PROBES = [0, 1_704_067_200, 1_719_792_000, 1_767_225_600, 1_782_864_000];

export async function serverTimezone(ch: ClickHouseClient): Promise<ServerTimezone> {
  const cols = PROBES.map((t, i) => `toString(toDateTime(${t})) = toString(toDateTime(${t}, 'UTC')) AS p${i}`).join(', ');
  const rs = await ch.query({ query: `SELECT timezone() AS tz, ${cols}`, format: 'JSONEachRow' });
  const row = (await rs.json<Record<string, string | number>>())[0];
  if (!row) throw new Error('SELECT timezone() returned no row');
  return { timezone: String(row.tz), utc: PROBES.every((_, i) => Number(row[`p${i}`]) === 1) };
}

export class NonUtcServerError extends Error {}

/** Refuses (throws NonUtcServerError) a server whose zone is not UTC, or only warns when allowed. */
export async function checkServerTimezone(
  ch: ClickHouseClient,
  allowNonUtc: boolean,
  warn: (msg: string) => void,
): Promise<ServerTimezone> {
  const tz = await serverTimezone(ch);
  if (tz.utc) return tz;
  const msg =
    `ClickHouse server time zone is ${tz.timezone}, not UTC: events.time_created prints and is cut into days in ${tz.timezone}, ` +
    'and rows written before migration 0007 were parsed in it. Set the server to UTC (<timezone>UTC</timezone> in config.xml), ' +
    'see docs/analytics.md "Server time zone"';
  if (!allowNonUtc) throw new NonUtcServerError(`${msg}; or set CLICKHOUSE_ALLOW_NON_UTC=true to continue anyway`);
  warn(`${msg} (continuing: CLICKHOUSE_ALLOW_NON_UTC=true)`);
  return tz;
}
