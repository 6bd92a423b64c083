// A second, private instance of one backing service, on its own ports and data directory, for tests
// that stop, kill or restart it (fault tests) without disturbing the shared stack other tests use.
// It is the same infra/local/stack.sh, pointed at another state dir and other ports.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const STACK = fileURLToPath(new URL('../../infra/local/stack.sh', import.meta.url));

export type Component = 'kafka' | 'clickhouse' | 'redis';

export class PrivateStack {
  readonly stateDir = mkdtempSync(path.join(tmpdir(), 'meterline-private-'));
  readonly ports: { kafka: number; kafkaController: number; clickhouseHttp: number; clickhouseTcp: number; redis: number };

  /** basePort: a free range of 10 ports, distinct per test file (e.g. 19100, 19110, ...). */
  constructor(basePort: number) {
    this.ports = {
      kafka: basePort,
      kafkaController: basePort + 1,
      clickhouseHttp: basePort + 2,
      clickhouseTcp: basePort + 3,
      redis: basePort + 4,
    };
  }

  get kafkaBrokers(): string {
    return `127.0.0.1:${this.ports.kafka}`;
  }
  get clickhouseUrl(): string {
    return `http://127.0.0.1:${this.ports.clickhouseHttp}`;
  }
  get redisUrl(): string {
    return `redis://127.0.0.1:${this.ports.redis}`;
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      METERLINE_STATE_DIR: this.stateDir,
      KAFKA_PORT: String(this.ports.kafka),
      KAFKA_CONTROLLER_PORT: String(this.ports.kafkaController),
      KAFKA_HEAP: '384m',
      CLICKHOUSE_HTTP_PORT: String(this.ports.clickhouseHttp),
      CLICKHOUSE_TCP_PORT: String(this.ports.clickhouseTcp),
      REDIS_PORT: String(this.ports.redis),
    };
  }

  async start(c: Component): Promise<void> {
    await run('bash', [STACK, `${c}-start`], { env: this.env(), timeout: 180_000 });
  }

  /** Graceful stop (SIGTERM, then SIGKILL after 30 s). */
  async stop(c: Component): Promise<void> {
    await run('bash', [STACK, `${c}-stop`], { env: this.env(), timeout: 60_000 });
  }

  async restart(c: Component): Promise<void> {
    await this.stop(c);
    await this.start(c);
  }

  /** Stops everything this instance started and deletes its data. */
  async destroy(): Promise<void> {
    for (const c of ['kafka', 'clickhouse', 'redis'] as const) await this.stop(c).catch(() => undefined);
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
