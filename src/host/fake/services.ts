// The fake node's systemd units as systemctl (systemd 252) shows and changes them: `is-active UNITS`
// (one state a line, exit 0 only when every unit is active, 3 otherwise), `show --property=KillMode
// --value -- UNITS` (one KillMode a line) and `stop|start UNITS` (exit 5 for a unit systemd does not
// know; the fake then changes none of them). Any other form is left to FakeHost, which fails closed.
import type { ExecResult } from '../host.js';
import { fail, OK, printed, type Outcome } from './model.js';

/** Unit name to its ActiveState ("active", "inactive", ...); a unit not in the map is unknown. */
export interface ServicesState {
  units: Map<string, string>;
  /** A unit's KillMode as its unit file (and drop-ins) set it; absent: systemd's default, control-group. */
  killModes?: Map<string, string>;
}

export function systemctlQuery(node: ServicesState, argv: string[]): ExecResult | undefined {
  // `show --property=KillMode --value -- UNITS`: one line each; systemd's default for a unit that does not set it.
  if (argv.slice(0, 5).join(' ') === 'systemctl show --property=KillMode --value --' && argv.length > 5)
    return printed(
      argv
        .slice(5)
        .map((u) => node.killModes?.get(u) ?? 'control-group')
        .join('\n') + '\n',
    );
  if (argv[0] !== 'systemctl' || argv[1] !== 'is-active' || argv.length <= 2) return undefined;
  const states = argv.slice(2).map((u) => node.units.get(u) ?? 'inactive');
  return printed(states.join('\n') + '\n', states.every((s) => s === 'active') ? 0 : 3);
}

export function systemctlCommand(node: ServicesState, argv: string[]): (() => Outcome) | undefined {
  if (argv[0] !== 'systemctl' || (argv[1] !== 'stop' && argv[1] !== 'start') || argv.length <= 2) return undefined;
  const units = argv.slice(2);
  return () => {
    const unknownUnit = units.find((u) => !node.units.has(u));
    if (unknownUnit) return fail(5, `Failed to ${argv[1]!} ${unknownUnit}: Unit ${unknownUnit} not found.\n`);
    for (const u of units) node.units.set(u, argv[1] === 'stop' ? 'inactive' : 'active');
    return OK;
  };
}
