// `profiles`: the CNIs cni-sweep knows and what each owns.
import type { Command } from 'commander';
import { loadProfiles } from '../profiles/index.js';
import type { Done, Io } from './common.js';

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
        `  config:     files whose plugin types include ${p.config.pluginTypes.join(', ')}${p.config.extraFiles.length ? `; ${p.config.extraFiles.join(', ')}` : ''}`,
        `  state:      ${[...p.state.paths, ...p.state.networkPaths, '/var/lib/cni/results/{network}-*'].join(', ')}`,
        `  interfaces: ${[...p.interfaces.names, ...p.interfaces.patterns.map((x) => `/${x}/`)].join(', ')}${p.interfaces.bridgePorts ? ', veths attached to its bridge' : ''}`,
        `  routes:     ${[p.routes.podNetworkRoutes ? 'routes into the pod network via the uplink (host-gw)' : '', ...p.routes.protocols.map((x) => `proto ${x}`), 'routes through its interfaces'].filter(Boolean).join(', ')}`,
        `  firewall:   chains ${p.firewall.chainPrefixes.map((x) => `${x}*`).join(', ')}; comments ${p.firewall.comments.map((c) => `"${c}"`).join(', ') || 'none'}; CNI-* chains of its networks; ${p.firewall.legacyRules.length} untagged legacy rule shapes`,
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
    .action((opts: { json?: boolean }) => {
      done(listProfiles(io, Boolean(opts.json)));
    });
}
