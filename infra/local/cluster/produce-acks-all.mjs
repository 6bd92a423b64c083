// Produces argv[3] records with acks=all to topic argv[4] of the brokers argv[2]; exits 0 when every send
// was acknowledged (the smoke test runs it with one of 3 brokers killed: min.insync 2 must still accept).
import { Kafka, logLevel } from 'kafkajs';

const [brokers = '127.0.0.1:19601', n = '50', topic = 'meterline.events'] = process.argv.slice(2);
const producer = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 8 } }).producer({
  idempotent: true,
});
await producer.connect();
for (let i = 0; i < Number(n); i++) await producer.send({ topic, acks: -1, messages: [{ key: `k${i}`, value: `smoke ${i}` }] });
await producer.disconnect();
console.log(`${n} records acknowledged (acks=all)`);
