// Isolating the rows ClickHouse refuses from an INSERT of many (a "poison" record must not block the
// rest). ClickHouse usually names the row ("at row N"): the rows before it are stored, that row is
// tried alone, and the rest continues; without a usable hint the rows are bisected. Rows are always
// attempted left to right and a refused row is handed to onRefused before anything after it is
// inserted, so the stored rows plus the refused ones always form a prefix of the input (the
// aggregator's Invariant R). Transient failures are the insert function's business (it retries or
// throws); only permanent data errors are isolated here.
import { isPermanentDataError, rejectedRow } from './failures.ts';

export interface IsolateResult<T> {
  stored: T[];
  /** Index of the first row not attempted (the budget ran out), or null when every row was handled. */
  cutAt: number | null;
}

export async function insertIsolating<T>(
  rows: T[],
  insert: (rows: T[]) => Promise<void>,
  onRefused: (row: T, err: unknown) => Promise<void>,
  /** Checked before each attempt after the first: true stops there (the caller resumes later). */
  outOfBudget: () => boolean = () => false,
): Promise<IsolateResult<T>> {
  const stored: T[] = [];
  let attempted = false;
  let cutAt: number | null = null;
  const attempt = async (from: number, to: number): Promise<void> => {
    if (from >= to || cutAt !== null) return;
    if (attempted && outOfBudget()) {
      cutAt = from;
      return;
    }
    attempted = true;
    const part = rows.slice(from, to);
    try {
      await insert(part);
      stored.push(...part);
    } catch (err) {
      if (!isPermanentDataError(err)) throw err;
      if (part.length === 1) return onRefused(part[0]!, err);
      const hint = rejectedRow(err);
      if (hint !== null && hint >= 1 && hint <= part.length) {
        const bad = from + hint - 1;
        await attempt(from, bad);
        await attempt(bad, bad + 1); // verified alone before anything is dead-lettered
        return attempt(bad + 1, to);
      }
      const mid = from + Math.ceil(part.length / 2);
      await attempt(from, mid);
      await attempt(mid, to);
    }
  };
  await attempt(0, rows.length);
  return { stored, cutAt };
}
