// The metric catalog as the aggregator sees it: all active metric definitions, refreshed by polling
// billable_metrics.updated_at (with an overlap, since a transaction may commit an older updated_at
// after a newer one was read). New versions are reported to onNewVersion (-> backfill).
import { loadMetricDefinitions, type Logger, type PgPool, type StoredMetricDefinition } from '@meterline/core';

const OVERLAP_MS = 30_000;

export class MetricCatalog {
  private readonly byId = new Map<string, StoredMetricDefinition>();
  /** (organization \0 event name) -> active metrics */
  private byEvent = new Map<string, StoredMetricDefinition[]>();
  private since: Date | null = null;
  private timer: NodeJS.Timeout | null = null;
  private loaded = false;

  constructor(
    private readonly pool: PgPool,
    private readonly logger: Logger,
    private readonly pollMs: number,
    private readonly onNewVersion: (m: StoredMetricDefinition) => void,
    /** A stored definition that cannot become SQL (e.g. a filter number ClickHouse cannot parse). */
    private readonly onInvalidDefinition: (m: { organizationId: string; metricId: string; version: number }, err: Error) => void = () =>
      undefined,
  ) {}

  get ready(): boolean {
    return this.loaded;
  }

  /** Active metrics for an organization's event name. */
  forEvent(organizationId: string, eventName: string): StoredMetricDefinition[] {
    return this.byEvent.get(`${organizationId}\0${eventName}`) ?? [];
  }

  all(): StoredMetricDefinition[] {
    return [...this.byId.values()].filter((m) => !m.archivedAt);
  }

  async refresh(): Promise<void> {
    const since = this.since ? new Date(this.since.getTime() - OVERLAP_MS) : null;
    const rows = await loadMetricDefinitions(this.pool, since, {
      includeArchived: since !== null,
      onInvalid: (r, err) => this.onInvalidDefinition(r, err),
    });
    let changed = false;
    const fresh: StoredMetricDefinition[] = [];
    for (const m of rows) {
      if (!this.since || m.updatedAt > this.since) this.since = m.updatedAt;
      const id = `${m.organizationId}\0${m.metricId}`;
      const prev = this.byId.get(id);
      if (prev && prev.version === m.version && Boolean(prev.archivedAt) === Boolean(m.archivedAt)) continue;
      if (prev && prev.version > m.version) continue;
      this.byId.set(id, m);
      changed = true;
      if (!m.archivedAt && (!prev || prev.version !== m.version)) fresh.push(m);
    }
    if (changed) this.rebuildIndex();
    this.loaded = true;
    // reported after the index holds them: the live path computes a version before its backfill starts
    for (const m of fresh) this.onNewVersion(m);
  }

  private rebuildIndex(): void {
    const idx = new Map<string, StoredMetricDefinition[]>();
    for (const m of this.byId.values()) {
      if (m.archivedAt) continue;
      const k = `${m.organizationId}\0${m.eventName}`;
      const list = idx.get(k);
      if (list) list.push(m);
      else idx.set(k, [m]);
    }
    this.byEvent = idx;
  }

  start(): void {
    const tick = async () => {
      try {
        await this.refresh();
      } catch (err) {
        this.logger.warn({ err }, 'metric catalog refresh failed');
      }
      if (this.timer !== null) this.timer = setTimeout(tick, this.pollMs);
    };
    this.timer = setTimeout(tick, this.pollMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
