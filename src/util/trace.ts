// Profiling aid: with CNI_SWEEP_TRACE=<file>, commands and planning are appended to that file with
// their start (ms since start-up) and duration, to see where a run's time goes (bench/, README).
import { appendFileSync } from 'node:fs';

const TRACE = process.env.CNI_SWEEP_TRACE;

export async function traced<T>(label: string, f: () => Promise<T>): Promise<T> {
  if (!TRACE) return f();
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    appendFileSync(TRACE, `${t0.toFixed(0).padStart(6)} ${(performance.now() - t0).toFixed(0).padStart(5)} ${label.slice(0, 120)}\n`);
  }
}

const mb = (n: number) => (n / 2 ** 20).toFixed(0);

/**
 * A point in time (ms since start-up) in the trace: where start-up work ends and reads begin. With
 * the CPU time the process has used so far (user + system) and the memory at that point: the resident set, the JavaScript heap (used of committed) and what
 * lives outside it (Buffers, strings handed to C++).
 */
export function mark(label: string): void {
  if (!TRACE) return;
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  appendFileSync(
    TRACE,
    `${performance.now().toFixed(0).padStart(6)}     - ${label.slice(0, 120)} (cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, rss ${mb(m.rss)} MB, heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} MB, external ${mb(m.external)} MB)\n`,
  );
}
