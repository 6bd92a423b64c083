// BILLING_MAX_METRICS_PER_ORGANIZATION (issue #18 item 2: no organization's catalog grows without bound):
// one more live metric is 409 metric_limit_reached naming the limit; a repeat of an existing metric and
// archived metrics do not count against it; concurrent creates never pass it (real Postgres).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

const LIMIT = 3;
let billing: BillingHandle;

beforeAll(async () => {
  ({ billing } = await startTestBilling({ env: { BILLING_MAX_METRICS_PER_ORGANIZATION: String(LIMIT) } }));
}, 60_000);
afterAll(async () => {
  await billing?.stop();
});

const metric = (id: string) => ({ metric_id: id, event_name: 'e', aggregation: 'count' });

describe('metric definitions per organization', () => {
  it('the limit: 409 beyond it, repeats answered, archived ones free a place, other organizations unaffected', async () => {
    const org = await createOrg(billing.url);
    for (let i = 0; i < LIMIT; i++) expect((await org.api.post('/v1/metrics', metric(`m${i}`))).status).toBe(201);
    const over = await org.api.post('/v1/metrics', metric('one_more'));
    expect(over.status).toBe(409);
    expect(over.body.error).toMatchObject({ code: 'metric_limit_reached', details: { limit: LIMIT, live: LIMIT } });
    expect(over.body.error.message).toContain('BILLING_MAX_METRICS_PER_ORGANIZATION');
    // an identical repeat of an existing metric is still its idempotent 200
    expect((await org.api.post('/v1/metrics', metric('m0'))).status).toBe(200);
    // another organization has its own count
    const other = await createOrg(billing.url);
    expect((await other.api.post('/v1/metrics', metric('one_more'))).status).toBe(201);
    // archiving one frees a place
    expect((await org.api.del('/v1/metrics/m1')).status).toBe(200);
    expect((await org.api.post('/v1/metrics', metric('one_more'))).status).toBe(201);
    expect((await org.api.post('/v1/metrics', metric('and_another'))).status).toBe(409);
  });

  it('12 concurrent creates of different metrics in a fresh organization: exactly the limit is created', async () => {
    const org = await createOrg(billing.url);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => org.api.post('/v1/metrics', metric(uniqueId(`c${i}`)))));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(LIMIT);
    expect(statuses.filter((s) => s === 409)).toHaveLength(12 - LIMIT);
    const listed = await org.api.get('/v1/metrics?limit=100');
    expect(listed.body.data).toHaveLength(LIMIT);
  });
});
