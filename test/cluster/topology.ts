// Where the cluster drill's backing services run and how it kills/restarts them. Two shapes behind one
// interface, so the drill itself does not care:
//   - `cluster`: the local cluster of `infra/local/stack.sh up --cluster` (3 Kafka brokers in ZooKeeper
//     mode, RF 3 / min.insync 2, 2 ClickHouse replicas of cluster `meterline`, Redis, Postgres db
//     meterline_cluster); faults are `stack.sh cluster-kill <c>` (kill -9) and `cluster-start <c>`.
//   - `private`: a single-node PrivateStack (ports 19680..19684) for developing the drill before the
//     cluster exists. Its "brokers" and "replicas" are one process each, so a kill there is an outage of
//     the whole component, not the loss of one member; the numbers of a private run say nothing about
//     replication and are labelled as such.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createKafka, type Config } from '@meterline/core';
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
  up(): Promise<void>;
  kill9(m: Member): Promise<void>;
  start(m: Member): Promise<void>;
  /** The broker that currently is the Kafka controller. */
  controller(config: Config): Promise<Member>;
  /** Stops what this topology started itself (the shared cluster is left running for the next run). */
  release(): Promise<void>;
}

/** Broker name from its listener port (kafka1 19601, kafka2 19611, kafka3 19621). */
const CLUSTER_BROKER_PORTS: Record<number, Member> = { 19601: 'kafka1', 19611: 'kafka2', 19621: 'kafka3' };

export function clusterTopology(env: NodeJS.ProcessEnv = process.env): Topology {
  const stack = (args: string[], timeout = 300_000) => run('bash', [STACK, ...args], { cwd: ROOT, timeout, maxBuffer: 16 << 20 });
  return {
    kind: 'cluster',
    kafkaBrokers: env.CLUSTER_KAFKA_BROKERS ?? '127.0.0.1:19601,127.0.0.1:19611,127.0.0.1:19621',
    clickhouseUrls: [env.CLUSTER_CLICKHOUSE_URL_1 ?? 'http://127.0.0.1:19641', env.CLUSTER_CLICKHOUSE_URL_2 ?? 'http://127.0.0.1:19651'],
    clickhouseDatabase: env.CLUSTER_CLICKHOUSE_DATABASE ?? 'meterline',
    redisUrl: env.CLUSTER_REDIS_URL ?? 'redis://127.0.0.1:19660',
    postgresUrl: env.CLUSTER_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/meterline_cluster',
    replicationFactor: 3,
    minInsyncReplicas: 2,
    async up() {
      // idempotent on the cluster engineer's side: brings up what is down, runs the cluster migrations
      await stack(['up', '--cluster'], 900_000);
    },
    async kill9(m) {
      await stack(['cluster-kill', m], 60_000);
    },
    async start(m) {
      await stack(['cluster-start', m], 300_000);
    },
    async controller(config) {
      const admin = createKafka(config.kafka).admin();
      await admin.connect();
      try {
        const d = await admin.describeCluster();
        const b = d.brokers.find((x) => x.nodeId === d.controller);
        const name = b ? CLUSTER_BROKER_PORTS[b.port] : undefined;
        if (!name) throw new Error(`controller ${d.controller} is not one of the known brokers: ${JSON.stringify(d.brokers)}`);
        return name;
      } finally {
        await admin.disconnect();
      }
    },
    async release() {
      /* the cluster stays up: bringing it up again costs minutes, `stack.sh down --cluster` stops it */
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
    async release() {
      await s.destroy();
    },
  };
}
