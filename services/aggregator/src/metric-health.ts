// Metric versions whose SQL ClickHouse refuses (e.g. a filter literal 18.16 cannot parse). Such a
// version is marked invalid once — metric_backfills status 'invalid' (rank 3, wins over running/done)
// with the ClickHouse error — and is then skipped by live rollups and backfills instead of being
// retried forever. A corrected definition is a new version and starts clean. Billing reads the status
// through core's metricVersionStatus.
import type { ClickHouseClient, Logger, MetricDefinition } from '@meterline/core';
import type { Counter } from 'prom-client';
import { errorSummary } from './failures.ts';

/** Status of a metric version in metric_backfills; the highest rank wins (ReplacingMergeTree(status_rank)). */
export const VERSION_STATUS_RANK = { running: 1, done: 2, invalid: 3 } as const;

/** One row of metric_backfills: a version's backfill progress, or its invalid mark with the error. */
export async function writeVersionStatus(
  ch: ClickHouseClient,
  m: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>,
  status: keyof typeof VERSION_STATUS_RANK,
  extra: { rowsWritten?: number; error?: string } = {},
): Promise<void> {
  await ch.insert({
    table: 'metric_backfills',
    format: 'JSONEachRow',
    values: [
      {
        organization_id: m.organizationId,
        metric_id: m.metricId,
        metric_version: m.version,
        status,
        status_rank: VERSION_STATUS_RANK[status],
        rows_written: extra.rowsWritten ?? 0,
        error: extra.error ?? '',
      },
    ],
  });
}

const keyOf = (m: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>) => `${m.organizationId}\0${m.metricId}\0${m.version}`;

export class MetricHealth {
  private readonly invalid = new Set<string>();
  private readonly reporting = new Set<string>();

  constructor(
    private readonly ch: ClickHouseClient,
    private readonly logger: Logger,
    private readonly counter: Counter<string>,
  ) {}

  /** Loads the versions already marked invalid (at start: a restart must not retry them). */
  async load(): Promise<void> {
    const rs = await this.ch.query({
      query: 'SELECT organization_id, metric_id, metric_version FROM metric_backfills FINAL WHERE status_rank = 3',
      format: 'JSONEachRow',
    });
    for (const r of await rs.json<{ organization_id: string; metric_id: string; metric_version: number | string }>()) {
      this.invalid.add(keyOf({ organizationId: r.organization_id, metricId: r.metric_id, version: Number(r.metric_version) }));
    }
  }

  isInvalid(m: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>): boolean {
    return this.invalid.has(keyOf(m));
  }

  valid<T extends MetricDefinition>(metrics: T[]): T[] {
    return this.invalid.size === 0 ? metrics : metrics.filter((m) => !this.invalid.has(keyOf(m)));
  }

  /** Records the version as invalid (ClickHouse first, so the mark survives a restart). */
  async markInvalid(m: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>, err: unknown): Promise<void> {
    const error = errorSummary(err);
    await writeVersionStatus(this.ch, m, 'invalid', { error });
    this.invalid.add(keyOf(m));
    this.counter.inc();
    this.logger.error(
      { organizationId: m.organizationId, metricId: m.metricId, version: m.version, error },
      'metric version marked invalid: its definition cannot become SQL ClickHouse runs; it is skipped until a new version',
    );
  }

  /** Marks a stored definition that cannot become SQL, once per version (the catalog re-reads rows). */
  reportInvalidDefinition(m: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>, err: Error): void {
    if (this.isInvalid(m) || this.reporting.has(keyOf(m))) return;
    this.reporting.add(keyOf(m));
    this.markInvalid(m, err)
      .catch((e: Error) =>
        this.logger.warn({ err: e.message, metricId: m.metricId }, 'could not mark metric version invalid (will retry on the next poll)'),
      )
      .finally(() => this.reporting.delete(keyOf(m)));
  }
}
