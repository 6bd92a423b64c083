// Exits 0 when every partition of every topic of the Kafka cluster at argv[2] (comma-separated brokers)
// has a leader and all of its replicas in sync. cluster.sh waits for this after restarting a broker, so
// that a drill's next fault starts from a fully redundant cluster (RF 3, min.insync 2).
import { Kafka, logLevel } from 'kafkajs';

const brokers = (process.argv[2] ?? '127.0.0.1:19601').split(',');
const admin = new Kafka({
  brokers,
  logLevel: logLevel.NOTHING,
  retry: { retries: 0 },
  connectionTimeout: 1000,
  requestTimeout: 5000,
}).admin();
try {
  await admin.connect();
  const topics = await admin.listTopics();
  const { topics: meta } = await admin.fetchTopicMetadata({ topics });
  await admin.disconnect();
  const behind = meta.flatMap((t) =>
    t.partitions.filter((p) => p.leader < 0 || p.isr.length < p.replicas.length).map((p) => `${t.name}/${p.partitionId}`),
  );
  if (behind.length) console.error(`not in sync: ${behind.slice(0, 10).join(', ')}${behind.length > 10 ? ' …' : ''}`);
  process.exit(behind.length ? 1 : 0);
} catch (err) {
  console.error(String(err));
  process.exit(1);
}
