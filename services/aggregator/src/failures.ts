// Telling a failure that will pass (retry with backoff) from one that never will (isolate the
// offending record or metric and move on). Getting this wrong in either direction is costly: treating
// an outage as permanent would dead-letter good events; treating bad data as transient stalls the
// partition forever. So only errors in which ClickHouse says the DATA or the generated SQL is wrong
// are permanent; everything else (connection refused/reset, timeouts, overload, unknown table while a
// migration is missing, read-only replicas, memory limits) is transient and only pauses the partition.

/** ClickHouse error codes meaning "this input can never be stored" (same numbers on 18.16 and LTS). */
const PERMANENT_DATA_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE (e.g. a lone surrogate \ud800 in JSON)
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  128, // TOO_LARGE_ARRAY_SIZE
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DOESNT_MATCH
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
]);

/** Codes meaning "this generated query is wrong" — a metric whose SQL can never run. */
const PERMANENT_QUERY_CODES = new Set([
  ...PERMANENT_DATA_CODES,
  36, // BAD_ARGUMENTS
  43, // ILLEGAL_TYPE_OF_ARGUMENT
  62, // SYNTAX_ERROR (e.g. a subnormal literal 5e-324 on 18.16)
  386, // NO_COMMON_TYPE
]);

/** The ClickHouse error code of an error, or null (18.16 answers "Code: 25, e.displayText() = …"). */
export function clickHouseCode(err: unknown): number | null {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e && typeof e.code === 'string' && /^\d+$/.test(e.code)) return Number(e.code);
  const m = typeof e?.message === 'string' ? /^Code: (\d+)[,.]/.exec(e.message) : null;
  return m ? Number(m[1]) : null;
}

/**
 * The 1-based row ClickHouse names in a parse error ("… (at row 4)"), or null. Only a hint: the
 * caller verifies it by inserting that row alone before dead-lettering anything.
 */
export function rejectedRow(err: unknown): number | null {
  const m = typeof (err as Error)?.message === 'string' ? /\(at row (\d+)\)/.exec((err as Error).message) : null;
  return m ? Number(m[1]) : null;
}

/** True when an INSERT of rows failed because of the rows themselves. */
export function isPermanentDataError(err: unknown): boolean {
  if (err instanceof PermanentError) return true;
  const code = clickHouseCode(err);
  return code !== null && PERMANENT_DATA_CODES.has(code);
}

/** True when a generated query (rollup, backfill) failed because the query itself is wrong. */
export function isPermanentQueryError(err: unknown): boolean {
  if (err instanceof PermanentError || err instanceof TypeError) return true; // TypeError: sqlNumber refused a value
  const code = clickHouseCode(err);
  return code !== null && PERMANENT_QUERY_CODES.has(code);
}

/** Thrown by our own code for input that can never succeed (e.g. a row the client cannot serialize). */
export class PermanentError extends Error {}

/** A short, single-line form of an error for dead-letter headers and metric status. */
export function errorSummary(err: unknown, max = 1000): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s+/g, ' ').trim().slice(0, max).toWellFormed();
}
