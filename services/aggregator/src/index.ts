export { startAggregator, type Aggregator, type AggregatorDeps } from './app.ts';
export { AGGREGATOR_CLICKHOUSE_SETTINGS } from './clickhouse-settings.ts';
