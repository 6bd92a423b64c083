// Runs a Meterline service as a child process (`node --import tsx services/<name>/src/main.ts`) with its
// own environment, waits for /readyz, samples peak RSS (VmHWM in /proc/<pid>/status) and can kill it
// with SIGKILL (fault drills) or stop it gracefully.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, createWriteStream, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type ServiceName = 'gateway' | 'aggregator' | 'billing';

/** Where BENCH_CPU_PROF children write their .cpuprofile (on exit; a SIGKILLed child writes none). */
export const CPU_PROF_DIR = path.join(ROOT, '.cache', 'bench', 'prof');

/** BENCH_CPU_PROF=billing[,gateway,...]: V8 CPU profile of those service children (opt-in; it slows them). */
function cpuProfArgs(name: ServiceName): string[] {
  const which = (process.env.BENCH_CPU_PROF ?? '').split(',').map((s) => s.trim());
  return which.includes(name) ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`] : [];
}

/** Peak resident set size (VmHWM) of a live process, in bytes; null if it is gone. */
export function readVmHWM(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time (user + system) a live process has used so far, in seconds (/proc/<pid>/stat); null if it is gone. */
export function readCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the parenthesised command name (which may contain spaces): utime is the 14th, stime the 15th
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
    sock.setTimeout(1_000, () => {
      sock.destroy();
      resolve(false);
    });
  });
}

// Children still alive when this process exits (normally, on an uncaught error, or on SIGINT/SIGTERM
// handled by the caller) are killed, so no orphaned service keeps answering on a bench port.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export class ServiceProcess {
  private child: ChildProcess | null = null;
  private sampler: NodeJS.Timeout | null = null;
  /** Highest VmHWM seen over every incarnation of this service (bytes). */
  peakRssBytes = 0;
  starts = 0;
  readonly logFile: string;

  constructor(
    readonly name: ServiceName,
    readonly port: number,
    private readonly env: Record<string, string>,
    logDir: string,
  ) {
    mkdirSync(logDir, { recursive: true });
    this.logFile = path.join(logDir, `${name}.log`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(readyTimeoutMs = 60_000): Promise<void> {
    if (this.running) return;
    // A leftover process on our port would answer /readyz in our child's place.
    if (await portInUse(this.port))
      throw new Error(`port ${this.port} is already in use (a leftover ${this.name} from an interrupted run?); stop that process first`);
    const out = createWriteStream(this.logFile, { flags: 'a' });
    // BENCH_GATEWAY_MAIN=<path of another checkout's services/gateway/src/main.ts> (under this directory, so
    // it resolves this checkout's node_modules): A/B runs of an older gateway against the same stack.
    const main = (this.name === 'gateway' && process.env.BENCH_GATEWAY_MAIN) || `services/${this.name}/src/main.ts`;
    const child = spawn(process.execPath, [...cpuProfArgs(this.name), '--import', 'tsx', main], {
      cwd: ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    this.child = child;
    live.add(child);
    child.once('exit', () => live.delete(child));
    this.starts++;
    this.sampler = setInterval(() => this.sample(), 250);
    this.sampler.unref();
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (!this.running)
        throw new Error(`${this.name} exited during start (code ${child.exitCode}, signal ${child.signalCode}); log: ${this.logFile}`);
      try {
        const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(1_000) });
        if (res.ok) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline)
        throw new Error(`${this.name} not ready on ${this.url}/readyz within ${readyTimeoutMs} ms; log: ${this.logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** CPU seconds this incarnation has used so far (null when not running). */
  cpuSeconds(): number | null {
    const pid = this.child?.pid;
    return pid && this.running ? readCpuSeconds(pid) : null;
  }

  sample(): void {
    const pid = this.child?.pid;
    if (!pid || !this.running) return;
    const hwm = readVmHWM(pid);
    if (hwm !== null && hwm > this.peakRssBytes) this.peakRssBytes = hwm;
  }

  private async waitExit(timeoutMs: number): Promise<boolean> {
    const child = this.child;
    if (!child || !this.running) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      child.once('exit', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** kill -9: no graceful shutdown, in-flight requests and uncommitted work are cut off. */
  async kill9(): Promise<void> {
    this.sample();
    if (this.child && this.running) {
      this.child.kill('SIGKILL');
      await this.waitExit(10_000);
    }
    this.clear();
  }

  /** SIGTERM, then SIGKILL after the grace period. */
  async stop(graceMs = 20_000): Promise<void> {
    this.sample();
    if (this.child && this.running) {
      this.child.kill('SIGTERM');
      if (!(await this.waitExit(graceMs))) {
        this.child.kill('SIGKILL');
        await this.waitExit(5_000);
      }
    }
    this.clear();
  }

  private clear(): void {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
    this.child = null;
  }
}
