// The shape of Meterline's ClickHouse schema: one server or a cluster (issue #13; how to run one:
// infra/local/cluster/README.md). The migration files are written once, for one server
// (infra/migrations/clickhouse/NNNN_*.sql); on a cluster every statement is rewritten here:
//
// - CREATE/DROP get ON CLUSTER <name>: they run on every replica through the distributed DDL queue.
// - ALTER TABLE runs as written, on the migrator's replica: every table it can name is replicated, and a
//   replicated table's ALTER is itself replicated (the other replicas apply it from the replication log;
//   18.16 waits until the active ones did). ON CLUSTER would not work for all of them anyway: 18.16's
//   distributed DDL refuses MODIFY ORDER BY (migration 0008) with "Unsupported type of ALTER query".
// - *MergeTree engines become Replicated*MergeTree('<path>/<db>/<table>/<migration>', '{replica}', args…):
//   rows inserted on one replica are copied to the others; the dedup semantics (ReplacingMergeTree's
//   version column, the sort key) are unchanged, so every reader's deduplication still applies.
//   The migration that created the table is part of the path: a table dropped and re-created by a later
//   migration (0003 re-creates events_by_offset) gets a fresh path, so it can never meet metadata a
//   dropped replica left in ZooKeeper/Keeper.
// - Log-family tables (the schema_migrations bookkeeping) become ReplicatedMergeTree: the applied
//   versions must be visible from whichever replica the next migrator connects to.
// - INSERTs are left alone: they run once, on the migrator's replica, and replicate.
// - No Distributed tables: the cluster has one shard, every replica holds all rows, and a Distributed
//   table would send each read to any replica, including one that has not yet fetched the latest parts;
//   the aggregator's exactly-once argument needs its reads to see its own writes (README there).
//
// Anything else (a statement kind or engine this file does not know) is refused with the statement, so
// a new migration that cannot be shaped fails its unit test (test/cluster-shape.unit.test.ts) instead of
// silently creating an unreplicated table on one replica.
import type { ClickHouseClient } from '../clients/clickhouse.ts';
import { sqlIdentifier, sqlString } from '../clients/clickhouse.ts';

/** Rewrites one statement of migration `migration` for the deployment's shape. */
export type StatementShaper = (statement: string, migration: string) => string;

/** One server: statements run exactly as written. */
export const singleServer: StatementShaper = (statement) => statement;

export interface ClusterShape {
  /** Cluster name in the servers' remote_servers (ON CLUSTER). */
  cluster: string;
  /** Prefix of every replicated table's ZooKeeper/Keeper path; may use the servers' macros ({shard}). */
  replicationPath: string;
}

export class UnshapeableStatement extends Error {
  override readonly name = 'UnshapeableStatement';
}

const NAME = '([A-Za-z_][A-Za-z0-9_]*)\\.([A-Za-z_][A-Za-z0-9_]*)';
const head = (pattern: string) => new RegExp(`^(${pattern}\\s+${NAME})(?=\\s|\\(|$)`, 'i');

// Statement kinds that take ON CLUSTER right after the (qualified) name.
const DDL: { kind: string; re: RegExp; table: boolean }[] = [
  { kind: 'CREATE TABLE', re: head('CREATE\\s+TABLE(?:\\s+IF\\s+NOT\\s+EXISTS)?'), table: true },
  { kind: 'CREATE MATERIALIZED VIEW', re: head('CREATE\\s+MATERIALIZED\\s+VIEW(?:\\s+IF\\s+NOT\\s+EXISTS)?'), table: false },
  { kind: 'CREATE VIEW', re: head('CREATE\\s+VIEW(?:\\s+IF\\s+NOT\\s+EXISTS)?'), table: false },
  { kind: 'DROP TABLE', re: head('DROP\\s+TABLE(?:\\s+IF\\s+EXISTS)?'), table: false },
];
const CREATE_DATABASE = /^(CREATE\s+DATABASE(?:\s+IF\s+NOT\s+EXISTS)?\s+[A-Za-z_][A-Za-z0-9_]*)\s*$/i;
const ENGINE = /\bENGINE\s*=\s*([A-Za-z]+)\s*(?:\(([^()]*)\))?/i;
const MERGE_TREES = new Set([
  'MergeTree',
  'ReplacingMergeTree',
  'SummingMergeTree',
  'AggregatingMergeTree',
  'CollapsingMergeTree',
  'VersionedCollapsingMergeTree',
]);
const LOGS = new Set(['TinyLog', 'Log', 'StripeLog']);

/** Statements shaped for `shape.cluster`; see the top of this file for the rules. */
export function clusterShaper(shape: ClusterShape): StatementShaper {
  const cluster = sqlIdentifier(shape.cluster);
  const onCluster = ` ON CLUSTER ${cluster}`;
  return (statement, migration) => {
    const stmt = statement.trim();
    const refuse = (why: string) =>
      new UnshapeableStatement(`migration ${migration}: cannot shape for cluster ${cluster} (${why}): ${stmt.slice(0, 160)}`);
    if (/\bON\s+CLUSTER\b/i.test(stmt)) throw refuse('already has ON CLUSTER; migrations are written for one server');
    // replicated by the table itself (see the top of this file)
    if (/^INSERT\s+INTO\b/i.test(stmt) || head('ALTER\\s+TABLE').test(stmt)) return stmt;
    const db = CREATE_DATABASE.exec(stmt);
    if (db) return `${db[1]}${onCluster}`;
    for (const d of DDL) {
      const m = d.re.exec(stmt);
      if (!m) continue;
      const [whole, , database, table] = m as unknown as [string, string, string, string];
      let rest = stmt.slice(whole.length);
      if (d.kind === 'CREATE MATERIALIZED VIEW' && !/^\s+TO\s/i.test(rest))
        throw refuse('a materialized view needs TO <table>: its implicit inner table would not be replicated');
      if (d.table) rest = replicatedEngine(rest, database, table, migration, shape.replicationPath, refuse);
      return `${whole}${onCluster}${rest}`;
    }
    throw refuse('unknown statement kind');
  };
}

/** The CREATE TABLE's engine clause as its replicated counterpart. */
function replicatedEngine(
  rest: string,
  database: string,
  table: string,
  migration: string,
  prefix: string,
  refuse: (why: string) => Error,
): string {
  const m = ENGINE.exec(rest);
  if (!m) throw refuse('no ENGINE clause');
  const [clause, engine, rawArgs] = m as unknown as [string, string, string | undefined];
  if (!/^[A-Za-z0-9_]+$/.test(migration)) throw refuse(`migration name ${JSON.stringify(migration)} cannot be part of a path`);
  const path = sqlString(`${prefix}/${database}/${table}/${migration}`);
  const args = (rawArgs ?? '').trim();
  let replacement: string;
  if (MERGE_TREES.has(engine)) {
    replacement = `ENGINE = Replicated${engine}(${[path, "'{replica}'", ...(args ? [args] : [])].join(', ')})`;
  } else if (LOGS.has(engine)) {
    if (args) throw refuse(`${engine} with arguments`);
    if (/\b(ORDER|PARTITION|PRIMARY)\s+BY\b/i.test(rest)) throw refuse(`${engine} with a key`);
    // Log tables have no key; tuple() = unsorted, every row kept
    replacement = `ENGINE = ReplicatedMergeTree(${path}, '{replica}') ORDER BY tuple()`;
  } else {
    throw refuse(`engine ${engine} has no replicated form here`);
  }
  return rest.slice(0, m.index) + replacement + rest.slice(m.index + clause.length);
}

/** The shaper for a ClickHouse config: one server unless CLICKHOUSE_CLUSTER names a cluster. */
export function shaperFor(cfg: { cluster?: string; replicationPath?: string }): StatementShaper {
  return cfg.cluster
    ? clusterShaper({ cluster: cfg.cluster, replicationPath: cfg.replicationPath ?? '/clickhouse/tables/{shard}' })
    : singleServer;
}

export class ClusterShapeMismatch extends Error {
  override readonly name = 'ClusterShapeMismatch';
}

async function rows<T>(ch: ClickHouseClient, query: string): Promise<T[]> {
  return (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
}

/**
 * Before migrating: the server knows the cluster (remote_servers) and reaches ZooKeeper/Keeper, and an
 * existing database has the shape asked for. Migrating plain tables as if they were replicated (or the
 * reverse) would leave a mix: new tables replicated, old ones on one server only, DDL reaching only some.
 */
export async function checkClusterShape(ch: ClickHouseClient, database: string, cluster: string): Promise<void> {
  if (cluster) {
    const hosts = await rows<{ n: string | number }>(ch, `SELECT count() AS n FROM system.clusters WHERE cluster = ${sqlString(cluster)}`);
    if (Number(hosts[0]?.n ?? 0) === 0)
      throw new ClusterShapeMismatch(
        `CLICKHOUSE_CLUSTER=${cluster} but the server has no such cluster in remote_servers (system.clusters)`,
      );
    // throws when the server has no <zookeeper> section or cannot reach it
    await rows(ch, "SELECT name FROM system.zookeeper WHERE path = '/' LIMIT 1").catch((err: Error) => {
      throw new ClusterShapeMismatch(`CLICKHOUSE_CLUSTER=${cluster} but the server cannot use ZooKeeper/Keeper: ${err.message}`);
    });
  }
  const t = await rows<{ engine: string }>(
    ch,
    `SELECT engine FROM system.tables WHERE database = ${sqlString(database)} AND name = 'schema_migrations'`,
  );
  const engine = t[0]?.engine;
  if (engine === undefined) return; // a new database: any shape
  const replicated = engine.startsWith('Replicated');
  if (replicated && !cluster)
    throw new ClusterShapeMismatch(
      `database ${database} was migrated for a cluster (schema_migrations is ${engine}); set CLICKHOUSE_CLUSTER to its cluster name`,
    );
  if (!replicated && cluster)
    throw new ClusterShapeMismatch(
      `database ${database} was migrated for one server (schema_migrations is ${engine}), not for cluster ${cluster}: ` +
        'its tables are not replicated; migrate into a new database, or unset CLICKHOUSE_CLUSTER (infra/local/cluster/README.md)',
    );
}
