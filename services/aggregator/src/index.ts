export { startAggregator, type Aggregator, type AggregatorDeps } from './app.ts';
