// The analyst views' SQL (generated from a table's columns and sort key) and the server time-zone check.
import { describe, expect, it } from 'vitest';
import { ANALYST_VIEWS, analystViewSql, checkServerTimezone, NonUtcServerError, type ClickHouseClient } from '../src/index.ts';

const view = (name: string) => ANALYST_VIEWS.find((v) => v.view === name) as (typeof ANALYST_VIEWS)[number];

describe('analystViewSql', () => {
  it('groups by the whole sort key, exposes zone-less DateTimes as UTC, picks the rest with any()', () => {
    const { sql, columns } = analystViewSql(
      'db',
      view('events_v'),
      [
        { name: 'organization_id', type: 'String' },
        { name: 'time_created', type: 'DateTime' },
        { name: 'received_at', type: "DateTime('UTC')" },
        { name: 'entity_id', type: 'String' },
      ],
      ['organization_id', 'time_created'],
    );
    expect(sql).toBe(
      "CREATE VIEW IF NOT EXISTS db.events_v AS SELECT organization_id, toDateTime(time_created, 'UTC') AS time_created, any(received_at) AS received_at, any(entity_id) AS entity_id FROM db.events GROUP BY organization_id, time_created",
    );
    expect(columns).toEqual([
      { name: 'organization_id', type: 'String' },
      { name: 'time_created', type: "DateTime('UTC')" },
      { name: 'received_at', type: "DateTime('UTC')" },
      { name: 'entity_id', type: 'String' },
    ]);
  });

  it('keeps the highest version per key (argMax) and renames the version column', () => {
    const { sql, columns } = analystViewSql(
      'db',
      view('metric_usage_v'),
      [
        { name: 'k', type: 'String' },
        { name: 'version', type: 'UInt64' },
        { name: 'event_count', type: 'UInt64' },
        { name: 'computed_at', type: 'DateTime' },
      ],
      ['k'],
    );
    expect(sql).toBe(
      "CREATE VIEW IF NOT EXISTS db.metric_usage_v AS SELECT k, max(version) AS rollup_version, argMax(event_count, version) AS event_count, toDateTime(argMax(computed_at, version), 'UTC') AS computed_at FROM db.metric_usage GROUP BY k",
    );
    expect(columns.map((c) => c.name)).toEqual(['k', 'rollup_version', 'event_count', 'computed_at']);
  });

  it('refuses a sort key that is not plain columns (the view could not group by it)', () => {
    expect(() => analystViewSql('db', view('events_v'), [{ name: 'a', type: 'String' }], ['lower(a)'])).toThrow(/not a plain column/);
  });
});

function fakeClickHouse(tz: string, utc: boolean): ClickHouseClient {
  return {
    query: async () => ({ json: async () => [{ tz, p0: 1, p1: utc ? 1 : 0, p2: utc ? 1 : 0, p3: 1, p4: 1 }] }),
  } as unknown as ClickHouseClient;
}

describe('checkServerTimezone', () => {
  it('accepts a zone that is UTC at every probed instant', async () => {
    const warnings: string[] = [];
    expect(await checkServerTimezone(fakeClickHouse('Etc/UTC', true), false, (m) => warnings.push(m))).toEqual({
      timezone: 'Etc/UTC',
      utc: true,
    });
    expect(warnings).toEqual([]);
  });

  it('refuses another zone, or only warns when allowed', async () => {
    await expect(checkServerTimezone(fakeClickHouse('Europe/London', false), false, () => undefined)).rejects.toBeInstanceOf(
      NonUtcServerError,
    );
    const warnings: string[] = [];
    expect((await checkServerTimezone(fakeClickHouse('Europe/London', false), true, (m) => warnings.push(m))).utc).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/Europe\/London.*CLICKHOUSE_ALLOW_NON_UTC=true/);
  });
});
