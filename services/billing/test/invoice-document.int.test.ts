// The invoice HTML document (GET /v1/invoices/:id/document) through real billing and Postgres, rendered
// by headless Chromium from Debian's packages (`infra/local/stack.sh install-test-tools` installs it;
// driven by playwright-core with executablePath, nothing downloads a browser). Asserts on the RENDERED
// text (document.body.innerText), not only on the markup: a user-supplied customer name with `<script>`
// and `&` shows literally and runs nothing. A missing Chromium fails the test (it never skips).
// WRITE_SCREENSHOT=1 writes docs/invoice-document.png.
import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

const EVIL_NAME = '<script>alert(1)</script> & Co';
const ORG_NAME = 'Acme Cloud & Data';
const SCREENSHOT = resolve(import.meta.dirname, '../../../docs/invoice-document.png');

function chromiumPath(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin')) {
    const p = join(dir, 'chromium');
    if (dir && existsSync(p)) return p;
  }
  throw new Error('chromium not found: run `bash infra/local/stack.sh install-test-tools` (Debian package chromium)');
}

let billing: BillingHandle;
let browser: Browser;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  ({ billing } = await startTestBilling());
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
  org = await createOrg(billing.url, ORG_NAME);
  expect(
    (await org.api.post('/v1/plans', { plan_id: 'pro', name: 'Pro', interval: 'month', flat_fee: '49.00', flat_fee_timing: 'in_advance' }))
      .status,
  ).toBe(201);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await billing?.stop();
});

const invoicesOf = async (sub: string) => (await org.api.get(`/v1/invoices?subscription_id=${sub}&limit=100`)).body.data as any[];

async function subscribe(customerId: string, name: string, startDate?: string) {
  expect((await org.api.post('/v1/customers', { customer_id: customerId, name, email: `billing+${customerId}@example.com` })).status).toBe(
    201,
  );
  const s = await org.api.post('/v1/subscriptions', {
    customer_id: customerId,
    plan_id: 'pro',
    ...(startDate ? { start_date: startDate } : {}),
  });
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  return invoicesOf(s.body.subscription_id);
}

const documentUrl = (id: string) => `${billing.url}/v1/invoices/${encodeURIComponent(id)}/document`;

/** Opens the document in Chromium over HTTP (the browser sees billing's real headers); returns the page and its rendered text. */
async function render(invoiceId: string): Promise<{ page: Page; text: string; dialogs: string[]; errors: string[] }> {
  const ctx = await browser.newContext({ extraHTTPHeaders: { 'x-api-key': org.apiKey }, viewport: { width: 900, height: 900 } });
  const page = await ctx.newPage();
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => {
    if (r.url() !== documentUrl(invoiceId)) errors.push(`unexpected request ${r.url()}`);
  });
  const res = await page.goto(documentUrl(invoiceId));
  expect(res?.status()).toBe(200);
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text (layout and CSS applied) is what is asserted
  const text = await page.locator('body').innerText(); // document.body.innerText
  return { page, text, dialogs, errors };
}

describe('invoice document', () => {
  it('a finalized subscription_start invoice: escaped HTML, rendered text in Chromium', async () => {
    const c = uniqueId('c');
    const invoices = await subscribe(c, EVIL_NAME);
    const inv = invoices.find((i) => i.reason === 'subscription_start');
    expect(inv).toMatchObject({ status: 'finalized', total: '49.00', currency: 'USD' });
    expect(inv.number).toMatch(/^INV-\d{6}$/);
    const line = inv.line_items[0];
    expect(line).toMatchObject({ kind: 'flat_fee', amount_due: '49.00' });

    // the raw HTTP response
    const res = await fetch(documentUrl(inv.invoice_id), { headers: { 'x-api-key': org.apiKey } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain(EVIL_NAME);
    expect(html).not.toMatch(/(src|href)=/); // self-contained: no external assets
    expect(html).toContain(ORG_NAME.replace('&', '&amp;'));

    // rendered
    const { page, text, dialogs, errors } = await render(inv.invoice_id);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    expect(text).toContain(ORG_NAME);
    expect(text).toContain(`Invoice ${inv.number}`);
    expect(text).toContain(EVIL_NAME);
    expect(text).toContain(c);
    expect(text).toContain(`billing+${c}@example.com`);
    expect(text).toContain(line.description);
    expect(text).toMatch(/Total\s+49\.00 USD/);
    expect(text).toMatch(/Amount due\s+49\.00 USD/);
    expect(text).toMatch(new RegExp(`Issue date\\s+${inv.finalized_at.slice(0, 10)}`));
    expect(text).not.toMatch(/\bDraft\b|\bVOID\b|\bPAID\b/);
    // the line's row: description, period, quantity, amount in order
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text of the row
    const row = await page.locator('tbody tr').first().innerText();
    expect(row).toContain(line.description);
    const when = (iso: string) => (iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`);
    const periodLabel = `${when(line.period_start ?? inv.period_start)} – ${when(line.period_end ?? inv.period_end)}`;
    expect(row.split('\t').map((s) => s.trim())).toEqual([expect.stringContaining(line.description), periodLabel, line.quantity, '49.00']);
    if (process.env.WRITE_SCREENSHOT === '1') await page.locator('main').screenshot({ path: SCREENSHOT });
    await page.context().close();

    // paid: stamped, nothing due
    expect((await org.api.post(`/v1/invoices/${inv.invoice_id}/mark_paid`)).status).toBe(200);
    const paid = await render(inv.invoice_id);
    expect(paid.text).toContain('PAID');
    expect(paid.text).toMatch(/Total\s+49\.00 USD/);
    expect(paid.text).toMatch(/Amount due\s+0\.00 USD/);
    await paid.page.context().close();
  });

  it('a draft renders as "Draft invoice" with no number; a voided one carries VOID', async () => {
    const c = uniqueId('c');
    const start = new Date(Date.now() - 60_000);
    start.setUTCMonth(start.getUTCMonth() - 1);
    const invoices = await subscribe(c, 'Bob & Alice', start.toISOString());
    const draft = invoices.find((i) => i.status === 'draft');
    expect(draft, JSON.stringify(invoices)).toBeDefined();
    expect(draft.number).toBeNull();
    const d = await render(draft.invoice_id);
    expect(d.text).toContain('Draft invoice');
    expect(d.text).toContain('Bob & Alice');
    expect(d.text).toContain('not yet assigned');
    expect(d.text).toMatch(new RegExp(`Total\\s+${draft.total.replace('.', '\\.')} USD`));
    expect(d.text).not.toMatch(/Invoice INV-/);
    await d.page.context().close();

    expect((await org.api.post(`/v1/invoices/${draft.invoice_id}/void`)).status).toBe(200);
    const v = await render(draft.invoice_id);
    expect(v.text).toContain('VOID');
    expect(v.text).toMatch(/Amount due\s+0\.00 USD/);
    await v.page.context().close();
  });

  it("404 JSON for an unknown invoice and for another organization's invoice", async () => {
    const missing = await fetch(documentUrl('inv_nope'), { headers: { 'x-api-key': org.apiKey } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/json');
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');

    const other = await createOrg(billing.url);
    const [inv] = (await org.api.get('/v1/invoices?limit=1')).body.data;
    const cross = await fetch(documentUrl(inv.invoice_id), { headers: { 'x-api-key': other.apiKey } });
    expect(cross.status).toBe(404);
    const noKey = await fetch(documentUrl(inv.invoice_id));
    expect(noKey.status).toBe(401);
  });

  it('is in the OpenAPI document as a text/html response', async () => {
    const doc = (await fetch(`${billing.url}/docs/json`).then((r) => r.json())) as any;
    const op = doc.paths['/v1/invoices/{invoice_id}/document'].get;
    expect(op.responses['200'].content['text/html'].schema).toMatchObject({ type: 'string' });
    expect(op.responses['404'].content['application/json'], JSON.stringify(op.responses)).toBeDefined();
  });
});
