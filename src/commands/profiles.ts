// `profiles`: the CNIs cni-sweep knows and what each owns.
import type { Command } from 'commander';
import { z } from 'zod';
import { BUILT_IN, PROFILES_DIR, loadProfileSet } from '../profiles/files.js';
import { ProfileSchema } from '../profiles/schema.js';
import { checkRoot, PROFILE_OPTION, rejectEmpty, type Done, type Io } from './common.js';

/** " (network mynet or kubernetes, bridge kube-bridge)" for a qualified generic plugin type. */
const qualified = (q: { networks?: string[]; bridges?: string[] } | undefined) =>
  q
    ? ` (${[q.networks && `network ${q.networks.join(' or ')}`, q.bridges && `bridge ${q.bridges.join(' or ')}`].filter(Boolean).join(', ')})`
    : '';

/** The JSON Schema of a profile file: what a file may hold (defaults make fields optional). */
export function profileJsonSchema(): unknown {
  return {
    ...z.toJSONSchema(ProfileSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'cni-sweep profile',
    description: `A CNI's node-side state, for --profile FILE or ${PROFILES_DIR}/ (JSON or YAML).`,
  };
}

/** An interface pattern as a name with placeholders (`flannel.<n>`, `cali<11 hex>`); a regex it cannot say so stays one. */
export function readablePattern(re: string): string {
  const t = re
    .replace(/^\^|\$$/g, '')
    .replace(/\\d\+/g, '<n>')
    .replace(/\[0-9a-f\]\{(\d+)\}/g, '<$1 hex>')
    .replace(/\\\./g, '.');
  return /[\\[\](){}|*+?^$]/.test(t) ? `/${re}/` : t;
}

function listProfiles(io: Io, o: { json?: boolean; schema?: boolean; root: string; profile: string[] }): number {
  if (o.schema) {
    // Derived from the schema the profiles are validated with, so it cannot drift from it.
    io.stdout.write(JSON.stringify(profileJsonSchema(), null, 2) + '\n');
    return 0;
  }
  const { all, sources } = loadProfileSet(checkRoot(o.root), o.profile);
  if (o.json) {
    io.stdout.write(
      JSON.stringify(
        all.map((p) => ({ ...p, source: sources.get(p.name) })),
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  for (const p of all) {
    const source = sources.get(p.name)!;
    io.stdout.write(
      [
        `${p.name}: ${p.description}`,
        `  source:     ${source === BUILT_IN ? 'built in' : source}`,
        `  config:     files whose plugin types include ${p.config.pluginTypes.map((t) => t + qualified(p.config.pluginQualifiers[t])).join(', ')}${p.config.ipamTypes ? ` with IPAM ${p.config.ipamTypes.join(' or ')}` : ''}${p.config.extraFiles.length ? `; ${p.config.extraFiles.join(', ')}` : ''}`,
        `  state:      ${[...p.state.paths, ...p.state.networkPaths, '/var/lib/cni/results/{network}-*'].join(', ')}`,
        `  interfaces: ${[...p.interfaces.names, ...p.interfaces.patterns.map(readablePattern)].join(', ')}${p.interfaces.bridgePorts ? ', veths attached to its bridge' : ''}${p.interfaces.ovsDatapaths.length ? `; Open vSwitch datapaths ${p.interfaces.ovsDatapaths.join(', ')}` : ''}${p.interfaces.kernelOwned.length ? `; ${p.interfaces.kernelOwned.join(', ')} (the kernel's, made with its module: addresses flushed and set down, not deleted)` : ''}`,
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
    .description('list the CNIs cni-sweep knows, built in or from files, and what each owns')
    .option('--root <dir>', 'filesystem root (its etc/cni-sweep/profiles.d is read)', '/')
    .option(...PROFILE_OPTION)
    .option('--schema', 'print the JSON Schema of a profile file')
    .option('--json', 'as JSON, each profile with its source')
    .option('--verbose', 'stack traces on errors')
    .option('--no-color', 'no colour')
    .action((opts: { json?: boolean; schema?: boolean; root: string; profile: string[] }) => {
      rejectEmpty(opts);
      done(listProfiles(io, opts));
    });
}
