// Deduplicated views for analysts and BI tools (docs/analytics.md): what FINAL returns, without FINAL.
// Generated from each table's CURRENT schema after the migrations ran, so that they always group by
// the table's whole dedup key (its sort key) and carry every column: a migration that adds a column or
// grows the sort key (0008's entity_id) needs no view change. A view is recreated only when its columns
// or its GROUP BY differ from what the table now needs.
//
// Why GROUP BY and not `SELECT … FROM t FINAL`: ClickHouse 18.16 pushes an outer filter into a view's
// GROUP BY subquery (enable_optimize_predicate_expression = 1) but never into a FINAL one, so a FINAL
// view reads the whole table for every query; measured costs in docs/analytics.md.
import type { ClickHouseClient } from '../clients/clickhouse.ts';
import { sqlIdentifier, sqlString } from '../clients/clickhouse.ts';
import { singleServer, type StatementShaper } from './cluster.ts';

export interface AnalystView {
  view: string;
  table: string;
  /**
   * How a non-key column is taken from a key's rows: `any` (copies of one record are identical) or
   * `argMax` by a version column (ReplacingMergeTree(version): the highest version wins).
   */
  pick: { kind: 'any' } | { kind: 'argMax'; by: string; as: string };
}

export const ANALYST_VIEWS: readonly AnalystView[] = [
  { view: 'events_v', table: 'events', pick: { kind: 'any' } },
  // ReplacingMergeTree(version): per key the most complete state of its offset window
  { view: 'metric_usage_v', table: 'metric_usage', pick: { kind: 'argMax', by: 'version', as: 'rollup_version' } },
  // ReplacingMergeTree(status_rank): invalid (3) > done (2) > running (1)
  { view: 'metric_backfills_v', table: 'metric_backfills', pick: { kind: 'argMax', by: 'status_rank', as: 'max_status_rank' } },
  { view: 'dead_letters_v', table: 'dead_letters', pick: { kind: 'any' } },
];

interface Column {
  name: string;
  type: string;
}

/** A zone-less DateTime (a key column 18.16 cannot alter) is exposed as DateTime('UTC'): same instant. */
const utcType = (type: string) => (type === 'DateTime' ? "DateTime('UTC')" : type);
const utc = (expr: string, type: string) => (type === 'DateTime' ? `toDateTime(${expr}, 'UTC')` : expr);

/** The CREATE VIEW for a table's current columns and sort key, and the columns the view will have. */
export function analystViewSql(db: string, v: AnalystView, columns: Column[], sortKey: string[]): { sql: string; columns: Column[] } {
  const byName = new Map(columns.map((c) => [c.name, c]));
  for (const k of sortKey) if (!byName.has(k)) throw new Error(`${v.table}: sort key element ${k} is not a plain column`);
  const select: string[] = [];
  const out: Column[] = [];
  for (const k of sortKey) {
    const c = byName.get(k) as Column;
    select.push(c.type === 'DateTime' ? `${utc(c.name, c.type)} AS ${c.name}` : c.name);
    out.push({ name: c.name, type: utcType(c.type) });
  }
  if (v.pick.kind === 'argMax') {
    const by = byName.get(v.pick.by);
    if (!by) throw new Error(`${v.table}: no column ${v.pick.by}`);
    // the version under another name: an alias equal to a column that the other aggregates read
    // would replace that column inside them
    if (v.pick.as === by.name) throw new Error(`${v.view}: the version column needs another name`);
    select.push(`max(${by.name}) AS ${v.pick.as}`);
    out.push({ name: v.pick.as, type: by.type });
  }
  for (const c of columns) {
    if (sortKey.includes(c.name) || (v.pick.kind === 'argMax' && c.name === v.pick.by)) continue;
    const agg = v.pick.kind === 'any' ? `any(${c.name})` : `argMax(${c.name}, ${v.pick.by})`;
    select.push(`${utc(agg, c.type)} AS ${c.name}`);
    out.push({ name: c.name, type: utcType(c.type) });
  }
  const d = sqlIdentifier(db);
  const sql = `CREATE VIEW IF NOT EXISTS ${d}.${sqlIdentifier(v.view)} AS SELECT ${select.join(', ')} FROM ${d}.${sqlIdentifier(v.table)} GROUP BY ${sortKey.join(', ')}`;
  return { sql, columns: out };
}

async function rows<T>(ch: ClickHouseClient, query: string): Promise<T[]> {
  return (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
}

/**
 * Creates or refreshes the analyst views of `db`; returns the views it (re)created. On a cluster (`shape`,
 * ./cluster.ts) the views are created and dropped ON CLUSTER: every replica has them.
 */
export async function ensureAnalystViews(ch: ClickHouseClient, db: string, shape: StatementShaper = singleServer): Promise<string[]> {
  const changed: string[] = [];
  for (const v of ANALYST_VIEWS) {
    const cols = (t: string) =>
      rows<Column & { default_kind: string }>(
        ch,
        `SELECT name, type, default_kind FROM system.columns WHERE database = ${sqlString(db)} AND table = ${sqlString(t)}`,
      );
    const tableCols = (await cols(v.table)).filter((c) => c.default_kind !== 'ALIAS');
    const key = (
      await rows<{ sorting_key: string }>(
        ch,
        `SELECT sorting_key FROM system.tables WHERE database = ${sqlString(db)} AND name = ${sqlString(v.table)}`,
      )
    )[0];
    if (!key || tableCols.length === 0) throw new Error(`analyst view ${v.view}: table ${db}.${v.table} not found`);
    const want = analystViewSql(
      db,
      v,
      tableCols,
      key.sorting_key.split(',').map((s) => s.trim()),
    );
    const have = await cols(v.view);
    const same =
      have.length === want.columns.length && have.every((c, i) => c.name === want.columns[i]?.name && c.type === want.columns[i]?.type);
    if (same) continue;
    if (have.length > 0) await ch.command({ query: shape(`DROP TABLE IF EXISTS ${sqlIdentifier(db)}.${sqlIdentifier(v.view)}`, 'views') });
    await ch.command({ query: shape(want.sql, 'views') });
    changed.push(v.view);
  }
  return changed;
}
