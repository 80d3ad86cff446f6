// Shared bits for the unit suites: a phase context built the way the runner builds it, and
// captured CLI streams.
import { afterEach, beforeEach } from 'vitest';
import { main, type Io } from '../../src/cli.js';
import type { Host } from '../../src/host/host.js';
import { Gaps, takeSnapshot } from '../../src/inspect.js';
import { PHASES } from '../../src/phases/index.js';
import type { Ctx, Phase, PhasePlan, RunOptions } from '../../src/phases/types.js';
import { absorb, newCtx } from '../../src/run.js';
import { loadProfiles } from '../../src/profiles/index.js';
import type { Profile } from '../../src/profiles/schema.js';

/** The phases a run takes part in by default: every one but the opt-in ones (--with). */
export const DEFAULT_PHASES = PHASES.filter((p) => !p.optIn).map((p) => p.name);

export const FLANNEL: Profile = loadProfiles().find((p) => p.name === 'flannel')!;

export function runOptions(over: Partial<RunOptions> = {}): RunOptions {
  return {
    node: 'node-1',
    kubeconfig: '/root/.kube/config',
    podCidrs: [],
    uncordon: false,
    dryRun: true,
    drainTimeoutSec: 300,
    backupDir: '/var/backups/cni-sweep',
    now: new Date('2026-11-21T21:00:00.000Z'),
    version: '0.0.0-test',
    ...over,
  };
}

/** A context as the runner plans with (newCtx): snapshot taken first, every phase selected, work to do. */
export async function ctxFor(host: Host, over: Partial<Omit<Ctx, 'opts'>> & { opts?: Partial<RunOptions> } = {}): Promise<Ctx> {
  const gaps = new Gaps();
  const profiles = over.profiles ?? [FLANNEL];
  const { opts: given, ...rest } = over;
  const opts = runOptions(given);
  const snapshot = await takeSnapshot(host, profiles, opts.podCidrs, gaps);
  const ctx = newCtx(
    { host, opts, profiles, phases: PHASES, selected: over.selected ?? new Set(DEFAULT_PHASES) },
    snapshot,
    gaps,
    opts.dryRun,
  );
  return Object.assign(ctx, { hasWork: true }, rest);
}

/** The KUBECONFIG of whoever runs the tests must not leak into what a phase plans. */
export function isolateKubeconfigEnv(): void {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.KUBECONFIG;
    delete process.env.KUBECONFIG;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  });
}

export class Capture {
  text = '';
  write(s: string | Uint8Array): boolean {
    this.text += typeof s === 'string' ? s : Buffer.from(s).toString('utf8');
    return true;
  }
  get stream(): NodeJS.WritableStream {
    return this as unknown as NodeJS.WritableStream;
  }
}

/** A phase's plan, with its facts recorded in ctx as the runner records them for the phases after it. */
export async function planned(ctx: Ctx, phase: Phase): Promise<PhasePlan> {
  const plan = await phase.plan(ctx);
  absorb(ctx, plan);
  return plan;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  roots: string[];
  asked: string[];
}

/** main() on a fake host, with stdout, stderr, the roots it opened and the prompts it asked captured; `answer` answers the prompt. */
export async function runMain(argv: string[], host: Host, io: Partial<Io> & { answer?: string } = {}): Promise<CliResult> {
  const out = new Capture();
  const err = new Capture();
  const roots: string[] = [];
  const asked: string[] = [];
  const code = await main(argv, {
    stdout: out.stream,
    stderr: err.stream,
    stdinIsTty: false,
    stderrIsTty: false,
    env: {},
    makeHost: (root) => {
      roots.push(root);
      return host;
    },
    ...(io.answer !== undefined
      ? {
          stdinIsTty: true,
          ask: async (q: string) => {
            asked.push(q);
            return io.answer!;
          },
        }
      : {}),
    ...io,
  });
  return { code, stdout: out.text, stderr: err.text, roots, asked };
}
