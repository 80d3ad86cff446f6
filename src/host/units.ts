// What systemd says of units, read once for every caller (the distribution's detection, the service
// phases, a crashed run's leftovers).
import type { Host } from './host.js';

/** The read unitStates makes, to start it early. */
export const unitStatesArgv = (units: string[]) => ['systemctl', 'is-active', ...units];

/**
 * Each unit's state as `systemctl is-active` prints it: one line per unit, in order (its exit code is
 * non-zero when any is inactive, so the lines are what counts). Null when systemctl is not installed.
 */
export async function unitStates(host: Host, units: string[]): Promise<Map<string, string> | null> {
  if (!units.length) return new Map();
  if (!(await host.has('systemctl'))) return null;
  const r = await host.query(unitStatesArgv(units));
  if (!r) return null;
  const states = r.stdout.split('\n');
  return new Map(units.map((u, i) => [u, states[i]?.trim() ?? '']));
}
