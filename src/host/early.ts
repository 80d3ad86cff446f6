// The first listings of a `run` or `plan`, started by the loader (dist/cni-sweep.cjs) before it
// compiles the bundle: they take as long as Node takes to load cni-sweep (tens of milliseconds;
// iptables-nft-save of thousands of rules is the slowest), and ran one after the other before.
// The list is fixed at build time (earlyReads, src/inspect.ts); RealHost takes the answers to
// those it asks for, and they are then what query() answers, as a batch it started would be.
import { firewallDump, startBatch, type BatchAnswer } from './batch.js';
import { DEFAULT_TIMEOUT_MS } from './process.js';

export interface EarlyReads {
  argvs: string[][];
  answers: Array<Promise<BatchAnswer>>;
}

const KEY = Symbol.for('cni-sweep.early-reads');
type WithEarly = typeof globalThis & { [KEY]?: EarlyReads & { ref: () => void } };

/** Starts them, unref'd: a command that never takes them (a usage error, --help) exits without waiting for them. */
export function startEarly(argvs: string[][]): void {
  const batch = startBatch(argvs, DEFAULT_TIMEOUT_MS, () => false, firewallDump, true);
  (globalThis as WithEarly)[KEY] = { argvs, ...batch };
}

/** The early reads, once: whoever takes them keeps the process alive until they end. */
export function takeEarly(): EarlyReads | null {
  const g = globalThis as WithEarly;
  const early = g[KEY];
  if (!early) return null;
  g[KEY] = undefined;
  early.ref();
  return { argvs: early.argvs, answers: early.answers };
}
