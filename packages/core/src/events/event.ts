// The usage event as Meterline carries it from the gateway through Kafka to ClickHouse.
// Validation of what clients send lives in the gateway; this is the normalized, trusted form.

export type PropertyValue = string | number | boolean;
export type Properties = Record<string, PropertyValue>;

export interface UsageEvent {
  organizationId: string;
  customerId: string;
  eventName: string;
  /** Unique per organization; the unit of deduplication. */
  idempotencyId: string;
  /** When the usage happened, epoch milliseconds (UTC). */
  timeCreatedMs: number;
  /** When the gateway received it, epoch milliseconds (UTC). */
  receivedAtMs: number;
  properties: Properties;
  /** Which intake produced it: "api" or "segment". */
  source: string;
  /**
   * The customer's entity (seat, workspace) the usage belongs to, when any: same rules as customerId.
   * Absent or '' = customer-level. Entity usage also counts toward the customer (services/billing/README.md, "Entities").
   */
  entityId?: string;
}

/** Kafka record key: one customer's events stay on one partition, in order. */
export function eventKey(e: Pick<UsageEvent, 'organizationId' | 'customerId'>): string {
  return `${e.organizationId}/${e.customerId}`;
}
