// npm run org:create -- --name acme   → creates an organization and prints its API key (shown once).
import { parseArgs } from 'node:util';
import { createPostgres, loadConfig, migratePostgres } from '@meterline/core';
import { insertOrganization } from '../orgs/store.ts';

const { values } = parseArgs({ options: { name: { type: 'string' }, json: { type: 'boolean', default: false } } });
if (!values.name) {
  process.stderr.write('usage: npm run org:create -- --name <organization name> [--json]\n');
  process.exit(2);
}
const config = loadConfig();
await migratePostgres(config.postgresUrl);
const pool = createPostgres(config.postgresUrl, { max: 1, applicationName: 'meterline-org-create' });
try {
  const org = await insertOrganization(pool, values.name);
  if (values.json) process.stdout.write(JSON.stringify(org) + '\n');
  else
    process.stdout.write(
      `organization_id: ${org.organization_id}\nname: ${org.name}\napi_key: ${org.api_key}\n(the API key is shown only now; store it safely)\n`,
    );
} finally {
  await pool.end();
}
