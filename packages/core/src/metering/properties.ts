// Parsed property columns of a raw event (events.prop_keys / prop_values / prop_numbers): exact,
// fast metric filters without re-parsing JSON in ClickHouse. Semantics (docs/analytics.md):
//   text value:    strings as-is, numbers as JavaScript prints them, booleans 'true' / 'false'
//   numeric value: numbers; strings that are plain decimal numbers; otherwise none (booleans too):
//                  prop_number_values holds 0 and prop_is_number 0 (ClickHouse 18.16 crashes on empty
//                  Array(Nullable(...)) indexing, so no Nullable arrays)
import { MIN_NORMAL_NUMBER } from '../clients/clickhouse.ts';
import type { Properties, PropertyValue } from '../events/event.ts';

export interface PropertyColumns {
  prop_keys: string[];
  prop_values: string[];
  prop_number_values: number[];
  prop_is_number: number[];
}

const NUMERIC = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

export function propertyText(v: PropertyValue): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : v ? 'true' : 'false';
}

/**
 * The numeric value of a property, or null. Subnormal magnitudes (below 2.2250738585072014e-308) count
 * as 0: no usage quantity is that small, and ClickHouse parses them inconsistently. The stored
 * `properties` JSON keeps the value exactly as sent.
 */
export function propertyNumber(v: PropertyValue): number | null {
  let n: number | null = null;
  if (typeof v === 'number') n = Number.isFinite(v) ? v : null;
  else if (typeof v === 'string' && NUMERIC.test(v.trim())) {
    const parsed = Number(v.trim());
    n = Number.isFinite(parsed) ? parsed : null;
  }
  if (n !== null && n !== 0 && Math.abs(n) < MIN_NORMAL_NUMBER) return 0;
  return n;
}

export function propertyColumns(props: Properties): PropertyColumns {
  const out: PropertyColumns = { prop_keys: [], prop_values: [], prop_number_values: [], prop_is_number: [] };
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || typeof v === 'object') continue;
    out.prop_keys.push(k);
    out.prop_values.push(propertyText(v));
    const n = propertyNumber(v);
    out.prop_number_values.push(n ?? 0);
    out.prop_is_number.push(n === null ? 0 : 1);
  }
  return out;
}
