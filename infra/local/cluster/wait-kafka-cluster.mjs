// Exits 0 when the Kafka broker at argv[2] answers a metadata request AND the cluster it belongs to
// reports at least argv[3] live brokers (default 1). Used by cluster.sh: a restarted broker "serves" once
// it is registered again, not merely when its port is open.
import { Kafka, logLevel } from 'kafkajs';

const broker = process.argv[2] ?? '127.0.0.1:19601';
const want = Number(process.argv[3] ?? 1);
const admin = new Kafka({
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  retry: { retries: 0 },
  connectionTimeout: 1000,
  requestTimeout: 3000,
}).admin();
try {
  await admin.connect();
  const { brokers } = await admin.describeCluster();
  await admin.disconnect();
  process.exit(brokers.length >= want ? 0 : 1);
} catch {
  process.exit(1);
}
