// Fair scheduling of backfill work across organizations (issue #18: one organization's 500 metric
// backfills must not delay another organization's new metric). Each organization has its own queue;
// the next slice goes to the organization that has used the least backfill time so far (ties: the one
// served longest ago, so an organization never served goes first). An organization joining (its queue
// was empty) starts at the smallest usage among the active ones: it gets its turn at once but cannot
// bank credit while idle and then monopolize. Within an organization, urgent items (a new version's
// first, recent slice) go before the rest; a version in progress keeps its place at the front. Pure data structure: no I/O, no timers.

interface OrgQueue<T> {
  urgent: T[];
  rest: T[];
  /** Backfill time charged to this organization (ms). */
  used: number;
  /** Sequence number of the last slice handed out (-1 = never). */
  lastServed: number;
  /** Items taken and not yet returned through done(). */
  inFlight: number;
}

export class FairQueue<T> {
  private readonly orgs = new Map<string, OrgQueue<T>>();
  private seq = 0;
  private count = 0;

  /** Items waiting (not in flight). */
  get size(): number {
    return this.count;
  }

  /** Organizations with waiting or in-flight items. */
  get organizations(): number {
    return this.orgs.size;
  }

  push(org: string, item: T, urgent = false): void {
    let q = this.orgs.get(org);
    if (!q) {
      q = { urgent: [], rest: [], used: this.minUsed(), lastServed: -1, inFlight: 0 };
      this.orgs.set(org, q);
    }
    (urgent ? q.urgent : q.rest).push(item);
    this.count++;
  }

  /**
   * Takes the next item that is eligible now: from the organization with the least used time that has
   * one (urgent items first). Return it with done() once its slice ran.
   */
  take(eligible: (item: T) => boolean): { org: string; item: T } | null {
    const order = [...this.orgs.entries()].sort(([, a], [, b]) => a.used - b.used || a.lastServed - b.lastServed);
    for (const [org, q] of order) {
      for (const list of [q.urgent, q.rest]) {
        const i = list.findIndex(eligible);
        if (i < 0) continue;
        const [item] = list.splice(i, 1) as [T];
        q.inFlight++;
        q.lastServed = this.seq++;
        this.count--;
        return { org, item };
      }
    }
    return null;
  }

  /**
   * Charges the organization for a slice (ms) and puts the item back if given: at the front of the
   * organization's non-urgent items, so its versions complete one after the other (each becomes final
   * as early as possible) instead of all at the end.
   */
  done(org: string, usedMs: number, requeue?: T): void {
    const q = this.orgs.get(org);
    if (!q) return;
    q.used += Math.max(0, usedMs);
    q.inFlight--;
    if (requeue !== undefined) {
      q.rest.unshift(requeue);
      this.count++;
    }
    if (q.inFlight === 0 && q.urgent.length === 0 && q.rest.length === 0) this.orgs.delete(org);
  }

  /** Drops waiting items matching pred (e.g. a version completed elsewhere). */
  remove(pred: (item: T) => boolean): void {
    for (const [org, q] of this.orgs) {
      for (const list of [q.urgent, q.rest]) {
        for (let i = list.length - 1; i >= 0; i--) {
          if (pred(list[i] as T)) {
            list.splice(i, 1);
            this.count--;
          }
        }
      }
      if (q.inFlight === 0 && q.urgent.length === 0 && q.rest.length === 0) this.orgs.delete(org);
    }
  }

  items(): T[] {
    return [...this.orgs.values()].flatMap((q) => [...q.urgent, ...q.rest]);
  }

  private minUsed(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const q of this.orgs.values()) min = Math.min(min, q.used);
    return Number.isFinite(min) ? min : 0;
  }
}
