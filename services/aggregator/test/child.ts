// The aggregator as a child process (node --import tsx services/aggregator/src/main.ts), for SIGKILL tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export class AggregatorProcess {
  private child: ChildProcess | null = null;
  starts = 0;

  constructor(
    readonly port: number,
    private readonly env: Record<string, string | undefined>,
    private readonly logFile: string,
  ) {}

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Throws when something else (e.g. a leftover process) listens on the port: /readyz would lie. */
  async assertPortFree(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const free = await new Promise<boolean>((resolve) => {
        const srv = createServer();
        srv.once('error', () => resolve(false));
        srv.listen(this.port, '127.0.0.1', () => srv.close(() => resolve(true)));
      });
      if (free) return;
      if (Date.now() > deadline) throw new Error(`port ${this.port} is in use by another process`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.assertPortFree();
    const out = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/aggregator/src/main.ts'], {
      cwd: ROOT,
      env: { ...this.env, AGGREGATOR_PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    this.child = child;
    this.starts++;
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`aggregator on ${this.port} exited (see ${this.logFile})`);
      try {
        if ((await fetch(`http://127.0.0.1:${this.port}/readyz`)).ok) return;
      } catch {
        /* not yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`aggregator on ${this.port} not ready (see ${this.logFile})`);
  }

  async kill9(): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 40_000);
    await exited;
    clearTimeout(t);
  }
}
