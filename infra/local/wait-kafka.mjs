// Exits 0 when a Kafka broker answers a metadata request at the given address (used by stack.sh).
import { Kafka, logLevel } from 'kafkajs';
const broker = process.argv[2] ?? '127.0.0.1:9092';
const admin = new Kafka({
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  retry: { retries: 0 },
  connectionTimeout: 1000,
  requestTimeout: 2000,
}).admin();
try {
  await admin.connect();
  await admin.describeCluster();
  await admin.disconnect();
  process.exit(0);
} catch {
  process.exit(1);
}
