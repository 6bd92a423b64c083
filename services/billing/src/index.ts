export { startBilling, buildBillingApp, buildDeps, type BillingHandle, type BillingOptions } from './app.ts';
export type { Deps } from './deps.ts';
export type { MetricVersionStatus, UsageReader, UsageQuery, UsageRow, UsageWindow } from './usage/reader.ts';
export type { UsageRecorder } from './usage/recorder.ts';
export * as pricing from './pricing.ts';
