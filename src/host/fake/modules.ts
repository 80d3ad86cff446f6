// The fake node's kernel modules as kmod (v30) shows and unloads them: `lsmod` (name, size, use
// count and users) and `modprobe -r MODULES` (refusing a module not loaded or still in use). A
// module's own devices (tunl0 of ipip) go with it, as the kernel removes them on unload. Any other
// form is left to FakeHost, which fails closed.
import type { ExecResult } from '../host.js';
import { deleteLink, type IpState } from './ip.js';
import { fail, OK, printed, type Outcome } from './model.js';

export interface ModulesState extends IpState {
  /** Loaded modules, with their reference counts and users as lsmod prints them. */
  modules: Map<string, { refs: number; users?: string }>;
}

export function lsmodQuery(node: ModulesState, argv: string[]): ExecResult | undefined {
  if (argv.join(' ') !== 'lsmod') return undefined;
  const rows = [...node.modules].map(([m, u]) => `${m.padEnd(24)}16384  ${u.refs}${u.users ? ` ${u.users}` : ''}`);
  return printed(['Module                  Size  Used by', ...rows, ''].join('\n'));
}

export function modprobeCommand(node: ModulesState, argv: string[]): (() => Outcome) | undefined {
  if (argv[0] !== 'modprobe' || argv[1] !== '-r' || argv.length <= 2) return undefined;
  return () => {
    for (const m of argv.slice(2)) {
      const mod = node.modules.get(m);
      if (!mod) return fail(1, `modprobe: FATAL: Module ${m} is not currently loaded.\n`);
      if (mod.refs > 0) return fail(1, `modprobe: FATAL: Module ${m} is in use.\n`);
      node.modules.delete(m);
      // The module's own devices (tunl0 of ipip) go with it.
      for (const l of node.links.filter((x) => x.linkinfo?.info_kind === m)) deleteLink(node, l.ifname);
    }
    return OK;
  };
}
