export { startGateway, buildGateway, type Gateway, type GatewayDeps } from './app.ts';
export { validateEvent, eventsOfBody, parseRfc3339, LIMITS, type ValidEvent, type FieldError } from './validation.ts';
export { mapSegmentMessage, flattenProperties, signSegmentBody, verifySegmentSignature } from './segment.ts';
export { DedupStore, dedupKey } from './dedup.ts';
export { statusOf, type EventResult, type EventStatus, type IngestSummary } from './ingest.ts';
