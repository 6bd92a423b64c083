// The whole path through the real services: HTTP → gateway → Kafka (Avro) → aggregator → ClickHouse,
// then a usage query over the aggregates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUsage, sqlString, type MetricDefinition } from '@meterline/core';
import { testConfig } from '../support/env.ts';
import { uniqueId } from '../support/fixtures.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import { waitFor } from '../support/wait.ts';

const run = uniqueId('e2e');
const cfg = testConfig({
  KAFKA_EVENTS_TOPIC: `${run}.events`,
  KAFKA_DEAD_LETTER_TOPIC: `${run}.dlq`,
  AGGREGATOR_GROUP_ID: `${run}.aggregator`,
  GATEWAY_PORT: '0',
  AGGREGATOR_PORT: '0',
});

describe('end-to-end pipeline', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline(cfg);
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('an event posted over HTTP is queryable in ClickHouse, raw and aggregated', async () => {
    const { pool, ch, org, gateway } = p;
    const metric: MetricDefinition = {
      organizationId: org.organizationId,
      metricId: 'tokens',
      version: 1,
      eventName: 'api_call',
      aggregation: 'sum',
      property: 'tokens',
      filters: [],
      groupBy: [],
    };
    await pool.query(
      `INSERT INTO billable_metrics (organization_id, metric_id, version, event_name, aggregation, property)
       VALUES ($1, $2, 1, $3, $4, $5)`,
      [metric.organizationId, metric.metricId, metric.eventName, metric.aggregation, metric.property],
    );

    const now = Date.now();
    const events = [
      { event_name: 'api_call', customer_id: 'cust_1', idempotency_id: `${run}-1`, properties: { tokens: 40 } },
      { event_name: 'api_call', customer_id: 'cust_1', idempotency_id: `${run}-2`, properties: { tokens: 2 } },
      { event_name: 'api_call', customer_id: 'cust_2', idempotency_id: `${run}-3`, properties: { tokens: 7 } },
    ];
    const res = await fetch(`${gateway.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
      body: JSON.stringify({ batch: events }),
    });
    expect(res.status).toBe(200);

    const rows = await waitFor(
      async () =>
        (
          await ch.query({
            query: `SELECT customer_id, idempotency_id, properties FROM events FINAL
                 WHERE organization_id = ${sqlString(org.organizationId)} ORDER BY idempotency_id`,
            format: 'JSONEachRow',
          })
        ).json<{ customer_id: string; idempotency_id: string; properties: string }>(),
      (r) => r.length >= 3,
      { what: 'raw events in ClickHouse', timeoutMs: 30_000 },
    );
    expect(rows.map((r) => [r.customer_id, r.idempotency_id, JSON.parse(r.properties).tokens])).toEqual([
      ['cust_1', `${run}-1`, 40],
      ['cust_1', `${run}-2`, 2],
      ['cust_2', `${run}-3`, 7],
    ]);

    const range = { from: new Date(now - 3_600_000), to: new Date(now + 3_600_000) };
    const usage = await waitFor(
      () => queryUsage(ch, { metric, customerId: 'cust_1', ...range }),
      (u) => u[0]?.value === 42,
      { what: 'aggregated usage for cust_1', timeoutMs: 30_000 },
    );
    expect(usage).toHaveLength(1);
    const all = await queryUsage(ch, { metric, ...range });
    expect(Object.fromEntries(all.map((u) => [u.customerId, u.value]))).toEqual({ cust_1: 42, cust_2: 7 });
  });
});
