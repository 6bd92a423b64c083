// Where the cluster drill's backing services run and how it kills/restarts them. Two shapes behind one
// interface, so the drill itself does not care:
//   - `cluster`: the local cluster of `infra/local/stack.sh up --cluster` (3 Kafka nodes, KRaft, each
//     broker + controller, RF 3 / min.insync 2; ZooKeeper and 2 ClickHouse replicas of cluster
//     `meterline`; Redis; Postgres db meterline_cluster); faults are `stack.sh cluster-kill <c>`
//     (kill -9) and `cluster-start <c>`.
//   - `private`: a single-node PrivateStack (ports 19680..19684) for developing the drill before the
//     cluster exists. Its "brokers" and "replicas" are one process each, so a kill there is an outage of
//     the whole component, not the loss of one member; the numbers of a private run say nothing about
//     replication and are labelled as such.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../bench/lib/proc.ts';
import { PrivateStack } from '../support/private-stack.ts';

const run = promisify(execFile);
const STACK = path.join(ROOT, 'infra/local/stack.sh');

export type Member = 'kafka1' | 'kafka2' | 'kafka3' | 'clickhouse1' | 'clickhouse2' | 'zookeeper';
export const BROKERS: readonly Member[] = ['kafka1', 'kafka2', 'kafka3'];

export interface Topology {
  readonly kind: 'cluster' | 'private';
  readonly kafkaBrokers: string;
  /** One http URL per ClickHouse replica (the private shape repeats its single server). */
  readonly clickhouseUrls: readonly [string, string];
  readonly clickhouseDatabase: string;
  readonly redisUrl: string;
  readonly postgresUrl: string;
  /** Replication of the drill's own topic (3 and min.insync 2 on the cluster). */
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number;
  /** Extra environment for every service process (the cluster's `stack.sh env --cluster` exports). */
  readonly serviceEnv: Readonly<Record<string, string>>;
  up(): Promise<void>;
  kill9(m: Member): Promise<void>;
  start(m: Member): Promise<void>;
  /** The broker that currently is the Kafka (KRaft) controller. */
  controller(): Promise<Member>;
  /** pid of each member process that runs now (for CPU accounting; empty when unknown). */
  memberPids(): Partial<Record<Member | 'redis', number>>;
  /** Stops what this topology started itself (the shared cluster is left running for the next run). */
  release(): Promise<void>;
}

/** `export NAME=value` lines (what `stack.sh env --cluster` prints) as a map. */
export function parseExports(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/**
 * The active KRaft controller (the metadata quorum's leader): every node persists the leader it knows in
 * `__cluster_metadata-0/quorum-state` on each election; the highest epoch is the current one. (Kafka's
 * Metadata API does not name the KRaft controller — it answers a random broker — and the quorum tool's
 * classes are not among the jars the stack fetches.)
 */
export function kraftLeader(stateDir: string): { member: Member; epoch: number } {
  let best: { member: Member; epoch: number } | null = null;
  for (const n of [1, 2, 3]) {
    try {
      const q = JSON.parse(readFileSync(path.join(stateDir, `kafka${n}`, 'logs', '__cluster_metadata-0', 'quorum-state'), 'utf8')) as {
        leaderId: number;
        leaderEpoch: number;
      };
      if (q.leaderId >= 1 && q.leaderId <= 3 && (!best || q.leaderEpoch > best.epoch))
        best = { member: `kafka${q.leaderId}` as Member, epoch: q.leaderEpoch };
    } catch {
      /* that node has no state yet */
    }
  }
  if (!best) throw new Error(`no KRaft quorum state under ${stateDir}`);
  return best;
}

export async function clusterTopology(env: NodeJS.ProcessEnv = process.env): Promise<Topology> {
  const stack = (args: string[], timeout = 300_000) => run('bash', [STACK, ...args], { cwd: ROOT, timeout, maxBuffer: 16 << 20 });
  const stateDir = env.METERLINE_STATE_DIR ?? path.join(ROOT, '.cache', 'cluster');
  // the cluster's own description of itself (infra/local/cluster/README.md): brokers, replication,
  // ClickHouse cluster name and database, Redis, Postgres
  const exported = parseExports((await stack(['env', '--cluster'], 60_000)).stdout);
  const need = (k: string) => {
    const v = exported[k];
    if (!v) throw new Error(`stack.sh env --cluster did not export ${k}`);
    return v;
  };
  return {
    kind: 'cluster',
    kafkaBrokers: need('KAFKA_BROKERS'),
    clickhouseUrls: [need('CLICKHOUSE_URL'), env.CLUSTER_CLICKHOUSE_URL_2 ?? 'http://127.0.0.1:19651'],
    clickhouseDatabase: need('CLICKHOUSE_DATABASE'),
    redisUrl: need('REDIS_URL'),
    postgresUrl: need('DATABASE_URL'),
    replicationFactor: Number(exported.KAFKA_REPLICATION_FACTOR ?? 3),
    minInsyncReplicas: Number(exported.KAFKA_MIN_INSYNC_REPLICAS ?? 2),
    serviceEnv: exported,
    async up() {
      // idempotent on the cluster's side: starts what is down, migrates (replicated shape), creates topics
      await stack(['up', '--cluster'], 900_000);
    },
    async kill9(m) {
      await stack(['cluster-kill', m], 60_000);
    },
    async start(m) {
      // waits until it serves: a broker registered with every partition back in sync, a replica caught up
      await stack(['cluster-start', m], 300_000);
    },
    async controller() {
      return kraftLeader(stateDir).member;
    },
    memberPids() {
      const files: Record<Member | 'redis', string> = {
        kafka1: 'kafka1.pid',
        kafka2: 'kafka2.pid',
        kafka3: 'kafka3.pid',
        zookeeper: 'zookeeper.pid',
        clickhouse1: 'clickhouse1/clickhouse.pid',
        clickhouse2: 'clickhouse2/clickhouse.pid',
        redis: 'redis.pid',
      };
      const out: Partial<Record<Member | 'redis', number>> = {};
      for (const [m, f] of Object.entries(files)) {
        try {
          const pid = Number(readFileSync(path.join(stateDir, f), 'utf8').trim());
          if (pid > 0) out[m as Member] = pid;
        } catch {
          /* not running */
        }
      }
      return out;
    },
    async release() {
      /* the cluster stays up: bringing it up again costs minutes; `stack.sh down --cluster` stops it */
    },
  };
}

export function privateTopology(basePort = 19680): Topology {
  const s = new PrivateStack(basePort);
  const component = (m: Member) => {
    if (m.startsWith('kafka')) return 'kafka' as const;
    if (m.startsWith('clickhouse')) return 'clickhouse' as const;
    throw new Error(`the private shape has no ${m}`);
  };
  return {
    kind: 'private',
    kafkaBrokers: s.kafkaBrokers,
    clickhouseUrls: [s.clickhouseUrl, s.clickhouseUrl],
    clickhouseDatabase: 'meterline_clusterdev',
    redisUrl: s.redisUrl,
    postgresUrl: process.env.CLUSTER_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/meterline_clusterdev',
    replicationFactor: 1,
    minInsyncReplicas: 1,
    serviceEnv: {},
    async up() {
      await s.start('redis');
      await s.start('clickhouse');
      await s.start('kafka');
    },
    // PrivateStack has no kill -9; its stop is SIGTERM (SIGKILL after 30 s): good enough to debug the drill
    async kill9(m) {
      await s.stop(component(m));
    },
    async start(m) {
      await s.start(component(m));
    },
    async controller() {
      return 'kafka1';
    },
    memberPids() {
      return {};
    },
    async release() {
      await s.destroy();
    },
  };
}
