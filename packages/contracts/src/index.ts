// @meterline/contracts: the HTTP APIs' request/response schemas, defined once with TypeBox.
// Runtime users (the services) import the schemas; the SDK imports only the Static<> types (`import type`).
export * from './schema.ts';
export * from './limits.ts';
export * from './common.ts';
export * from './ingest.ts';
export * from './billing.ts';
export * from './entities.ts';
export * from './search.ts';
