// Gateway metrics (prom-client). No organization label: cardinality stays bounded.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface GatewayMetrics {
  events: Counter<'source' | 'outcome' | 'reason'>;
  unavailable: Counter<'reason'>;
  batchSize: Histogram<'source'>;
  produceSeconds: Histogram<'ok'>;
  produceBatchMessages: Histogram;
  inFlight: Gauge;
  dedupCommitFailures: Counter;
}

export function createGatewayMetrics(registry: Registry): GatewayMetrics {
  return {
    events: new Counter({
      name: 'meterline_gateway_events_total',
      help: 'Events by outcome (accepted, duplicate, rejected, retry, ignored) and reason',
      labelNames: ['source', 'outcome', 'reason'],
      registers: [registry],
    }),
    unavailable: new Counter({
      name: 'meterline_gateway_unavailable_total',
      help: 'Requests answered 503, by cause (kafka, redis, postgres, overloaded, shutting_down)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'meterline_gateway_request_events',
      help: 'Events per request',
      labelNames: ['source'],
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    produceSeconds: new Histogram({
      name: 'meterline_gateway_kafka_produce_seconds',
      help: 'Latency of one Kafka send (acks=all), success or failure',
      labelNames: ['ok'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    produceBatchMessages: new Histogram({
      name: 'meterline_gateway_kafka_send_messages',
      help: 'Messages per Kafka send (requests are coalesced under load)',
      buckets: [1, 5, 10, 50, 100, 500, 1000, 2500, 5000, 10000],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'meterline_gateway_in_flight_events',
      help: 'Events accepted for processing and not yet answered',
      registers: [registry],
    }),
    dedupCommitFailures: new Counter({
      name: 'meterline_gateway_dedup_commit_failures_total',
      help: 'Kafka-acknowledged events whose "done" mark could not be written to Redis',
      registers: [registry],
    }),
  };
}
