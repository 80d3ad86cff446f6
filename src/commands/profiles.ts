// `profiles`: the CNIs cni-sweep knows and what each owns.
import type { Command } from 'commander';
import { loadProfiles } from '../profiles/index.js';
import type { Done, Io } from './common.js';

/** An interface pattern as a name with placeholders (`flannel.<n>`, `cali<11 hex>`); a regex it cannot say so stays one. */
export function readablePattern(re: string): string {
  const t = re
    .replace(/^\^|\$$/g, '')
    .replace(/\\d\+/g, '<n>')
    .replace(/\[0-9a-f\]\{(\d+)\}/g, '<$1 hex>')
    .replace(/\\\./g, '.');
  return /[\\[\](){}|*+?^$]/.test(t) ? `/${re}/` : t;
}

function listProfiles(io: Io, json: boolean): number {
  const all = loadProfiles();
  if (json) {
    io.stdout.write(JSON.stringify(all, null, 2) + '\n');
    return 0;
  }
  for (const p of all) {
    io.stdout.write(
      [
        `${p.name}: ${p.description}`,
        `  config:     files whose plugin types include ${p.config.pluginTypes.join(', ')}${p.config.ipamTypes ? ` with IPAM ${p.config.ipamTypes.join(' or ')}` : ''}${p.config.extraFiles.length ? `; ${p.config.extraFiles.join(', ')}` : ''}`,
        `  state:      ${[...p.state.paths, ...p.state.networkPaths, '/var/lib/cni/results/{network}-*'].join(', ')}`,
        `  interfaces: ${[...p.interfaces.names, ...p.interfaces.patterns.map(readablePattern)].join(', ')}${p.interfaces.bridgePorts ? ', veths attached to its bridge' : ''}${p.interfaces.kernelOwned.length ? `; ${p.interfaces.kernelOwned.join(', ')} (the kernel's, made with its module: addresses flushed and set down, not deleted)` : ''}`,
        `  routes:     ${[p.routes.podNetworkRoutes ? 'routes into the pod network via the uplink (host-gw)' : '', ...p.routes.protocols.map((x) => `proto ${x}`), 'routes through its interfaces'].filter(Boolean).join(', ')}`,
        `  firewall:   chains ${p.firewall.chainPrefixes.map((x) => `${x}*`).join(', ')}; comments ${[...p.firewall.comments.map((c) => `"${c}"`), ...p.firewall.commentPrefixes.map((c) => `"${c}..."`)].join(', ') || 'none'}; CNI-* chains of its networks; ${p.firewall.legacyRules.length} untagged legacy rule shapes`,
        `  nftables:   ${p.nftables.map((t) => `${t.family} ${t.name}`).join(', ') || 'none'}`,
        `  live while: ${p.agents.processes.map((a) => (a.cmdline ? `${a.name} (command line matching ${a.cmdline})` : a.name)).join(', ') || 'never (no agent known)'} runs in this network namespace`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}

export function profilesCommand(program: Command, io: Io, done: Done): void {
  program
    .command('profiles')
    .description('list the CNIs cni-sweep knows and what each owns')
    .option('--json', 'as JSON')
    .option('--verbose', 'stack traces on errors')
    .option('--no-color', 'no colour')
    .action((opts: { json?: boolean }) => {
      done(listProfiles(io, Boolean(opts.json)));
    });
}
