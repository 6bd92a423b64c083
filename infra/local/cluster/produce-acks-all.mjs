// Produces argv[3] records with acks=all to topic argv[4] of the brokers argv[2]; exits 0 when every send
// was acknowledged (the smoke test runs it with one of 3 brokers killed: min.insync 2 must still accept).
// First it waits (60 s at most) until the cluster has fenced the dead broker and every partition of the
// topic is led by a live one: until then a send to a partition the dead broker led can only fail
// (ECONNREFUSED), which is the broker's failover time, not a refusal of acks=all by 2 of 3 brokers.
import { Kafka, logLevel } from 'kafkajs';

const [brokers = '127.0.0.1:19601', n = '50', topic = 'meterline.events'] = process.argv.slice(2);
const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 8 } });

const admin = kafka.admin();
await admin.connect();
const deadline = Date.now() + 60_000;
for (;;) {
  try {
    const live = new Set((await admin.describeCluster()).brokers.map((b) => b.nodeId));
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = meta.topics[0]?.partitions ?? [];
    // the dead broker fenced (2 of 3 live) and no partition still led by it
    if (live.size < 3 && partitions.length > 0 && partitions.every((p) => live.has(p.leader))) break;
  } catch {
    // a broker that does not know yet: ask again
  }
  if (Date.now() > deadline) {
    console.error('leaders did not move off the killed broker within 60 s');
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 250));
}
const waitedMs = 60_000 - (deadline - Date.now());
await admin.disconnect();

const producer = kafka.producer({ idempotent: true });
await producer.connect();
for (let i = 0; i < Number(n); i++) await producer.send({ topic, acks: -1, messages: [{ key: `k${i}`, value: `smoke ${i}` }] });
await producer.disconnect();
console.log(`${n} records acknowledged (acks=all) after ${waitedMs} ms for the leaders to move`);
