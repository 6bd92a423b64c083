// Rough gateway throughput against the local stack (loopback only, bounded in time).
//   npx tsx services/gateway/bench/throughput.ts [seconds=10] [concurrency=16] [batch=100]
// Starts the gateway in-process with its own topic and organization, then runs `concurrency` clients
// posting batches of `batch` unique events for `seconds`, and prints events/s and request latencies.
// The formal benchmark lives in bench/; this is a quick number for the gateway alone.
import { createKafka, createPostgres, ensureTopics } from '@meterline/core';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { startGateway } from '../src/index.ts';

const seconds = Number(process.argv[2] ?? 10);
const concurrency = Number(process.argv[3] ?? 16);
const batch = Number(process.argv[4] ?? 100);

const config = testConfig({ KAFKA_EVENTS_TOPIC: uniqueId('bench_gw_events'), GATEWAY_PORT: '0', LOG_LEVEL: 'warn' });
const admin = createKafka(config.kafka).admin();
await admin.connect();
await ensureTopics(admin, config.kafka);
const pg = createPostgres(config.postgresUrl);
const { apiKey } = await createTestOrganization(pg);
const gw = await startGateway(config, { pg });

const run = uniqueId('r');
let seq = 0;
let accepted = 0;
let failed = 0;
const latencies: number[] = [];
const deadline = Date.now() + seconds * 1000;

async function client(c: number): Promise<void> {
  while (Date.now() < deadline) {
    const events = Array.from({ length: batch }, () => ({
      event_name: 'api_call',
      customer_id: `cust-${c}-${seq % 50}`,
      idempotency_id: `${run}-${seq++}`,
      properties: { tokens: seq % 1000, model: 'large' },
    }));
    const t0 = performance.now();
    const res = await fetch(`${gw.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
      body: JSON.stringify(events),
    });
    const body = (await res.json()) as { accepted?: number };
    latencies.push(performance.now() - t0);
    if (res.status === 200) accepted += body.accepted ?? 0;
    else failed++;
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(1);
const metrics = await (await fetch(`${gw.url}/metrics`)).text();
const sends = /meterline_gateway_kafka_send_messages_count(?:\{[^}]*\})? (\d+)/.exec(metrics)?.[1];
console.log(
  JSON.stringify({
    seconds: Number(elapsed.toFixed(1)),
    concurrency,
    batch,
    events_per_second: Math.round(accepted / elapsed),
    requests: latencies.length,
    failed_requests: failed,
    latency_ms: { p50: pct(0.5), p99: pct(0.99), max: latencies.at(-1)!.toFixed(1) },
    kafka_sends: Number(sends),
    events_per_kafka_send: sends ? Math.round(accepted / Number(sends)) : null,
  }),
);
await gw.stop();
await admin.deleteTopics({ topics: [config.kafka.eventsTopic] }).catch(() => undefined);
await admin.disconnect();
await pg.end();
