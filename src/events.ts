// Phases and the runner never print: they emit these, and a reporter renders them.
import type { PlannedStep } from './phases/types.js';

/** interrupted: a signal (or lost output) stopped the run before every step of the phase ran. */
export type PhaseStatus = 'ok' | 'nothing-to-do' | 'skipped' | 'failed' | 'interrupted';
export type StepStatus = 'planned' | 'ok' | 'failed' | 'not-run';

export type SweepEvent =
  | { type: 'phase-start'; phase: string; summary: string }
  | { type: 'phase-end'; phase: string; status: PhaseStatus; ms: number }
  | { type: 'step-start'; phase: string; step: PlannedStep }
  | { type: 'step-end'; phase: string; step: PlannedStep; status: StepStatus; ms: number; error?: string }
  | { type: 'note'; phase?: string; text: string }
  | { type: 'warn'; text: string };

export interface Reporter {
  emit(e: SweepEvent): void;
  /** Stops spinners before anything else is written (prompts, final output). */
  pause(): void;
}

export const silentReporter: Reporter = { emit() {}, pause() {} };
