// `npm start`'s last step: make sure a demo organization exists and print how to send it an event.
// Uses billing's admin API (the same one operators use); the demo key is kept in the stack's state dir
// so that repeated `npm start` runs print the same key. Local convenience only.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [stateDir, gatewayUrl, billingUrl, chPort] = process.argv.slice(2);
const adminSecret = process.env.ADMIN_SECRET || 'meterline-local-admin-secret';
const keyFile = `${stateDir}/demo-api-key`;

async function keyWorks(key) {
  const res = await fetch(`${billingUrl}/v1/organization`, { headers: { 'x-api-key': key } });
  return res.ok;
}

let key = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : '';
if (!key || !(await keyWorks(key))) {
  const res = await fetch(`${billingUrl}/admin/organizations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-admin-secret': adminSecret },
    body: JSON.stringify({ name: 'Demo' }),
  });
  if (!res.ok) throw new Error(`creating the demo organization failed: ${res.status} ${await res.text()}`);
  key = (await res.json()).api_key;
  writeFileSync(keyFile, key + '\n', { mode: 0o600 });
}

console.log(`
Meterline is up.
  Ingest:  ${gatewayUrl}/v1/events      Billing: ${billingUrl} (OpenAPI: ${billingUrl}/docs)
  Demo organization API key: ${key}

Send an event:
  curl -s -X POST ${gatewayUrl}/v1/events -H 'X-API-KEY: ${key}' -H 'content-type: application/json' \\
    -d '{"event_name":"api_call","customer_id":"cust_1","properties":{"tokens":42}}'
See it in ClickHouse a moment later:
  clickhouse-client --port ${chPort} -q "SELECT customer_id, event_name, properties FROM meterline.events FINAL ORDER BY time_created DESC LIMIT 5"
`);
