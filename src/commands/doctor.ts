// `doctor`: diagnoses the node and names the command that fixes each finding; changes nothing.
import type { Command } from 'commander';
import { Gaps } from '../inspect.js';
import path from 'node:path';
import { loadProfileSet } from '../profiles/files.js';
import { selectProfiles } from '../profiles/index.js';
import { builtInDistros, selectDistro } from '../distros/index.js';
import { applyDistro, detectDistro } from '../distros/node.js';
import { readJournal, stoppedByOpenJob } from '../journal.js';
import { doctor, isHealthy } from '../doctor/index.js';
import { adminConf } from '../phases/kube.js';
import { renderText, toJson } from '../doctor/render.js';
import {
  checkRoot,
  cniNames,
  distroName,
  kubeconfigOf,
  list,
  openHost,
  parse,
  parseCidrs,
  type CommonOpts,
  type Done,
  PROFILE_OPTION,
  type Io,
} from './common.js';

async function diagnose(io: Io, o: CommonOpts): Promise<number> {
  const root = checkRoot(o.root);
  const podCidrs = parseCidrs(o.podCidr);
  const { all } = loadProfileSet(root, o.profile);
  const names = cniNames(list(o.cni), all);
  const distros = builtInDistros();
  const override = o.distro ? selectDistro(distros, distroName(o.distro, distros)) : undefined;
  const gaps = new Gaps();
  // Doctor only reads: without root it reads what it can and lists what it could not.
  const host = openHost(io, root, gaps);
  const distro = await detectDistro(host, distros, override, stoppedByOpenJob(await readJournal(host), o.node ?? host.hostname()));
  const known = applyDistro(all, distro);
  const profiles = names.length ? applyDistro(selectProfiles(all, names), distro) : known;
  const { view, findings } = await doctor(
    host,
    {
      node: o.node ?? host.hostname(),
      // The same lookup as run's drain: --kubeconfig, $KUBECONFIG, else the control plane's admin.conf.
      kubeconfig: kubeconfigOf(io, o) ?? (await adminConf(host, distro.kubeconfig)) ?? undefined,
      podCidrs,
      profiles,
      allProfiles: known,
      distro,
      profileFiles: o.profile.map((f) => path.resolve(f)),
    },
    gaps,
  );
  if (o.json) io.stdout.write(JSON.stringify(toJson(view, findings), null, 2) + '\n');
  else {
    const color = o.color && Boolean((io.stdout as { isTTY?: boolean }).isTTY) && !io.env.NO_COLOR;
    io.stdout.write(renderText(view, findings, { color, verbose: o.verbose }));
  }
  return isHealthy(findings) ? 0 : 1;
}

export function doctorCommand(program: Command, io: Io, done: Done): void {
  program
    .command('doctor')
    .description(
      'diagnose the node (stale CNI state, mixed CNIs, MTU mismatch ...) and name the command that fixes each finding; changes nothing',
    )
    .option('--cni <names>', 'CNIs whose leftovers to diagnose, comma-separated (default: every CNI cni-sweep knows)')
    .option('--root <dir>', 'filesystem root every path is resolved under', '/')
    .option('--node <name>', 'Kubernetes node name (default: hostname)')
    .option(
      '--kubeconfig <path>',
      "kubeconfig to read the Node's pod CIDR and the NetworkPolicy objects (default: $KUBECONFIG, else /etc/kubernetes/admin.conf; without one the API is not asked)",
    )
    .option('--pod-cidr <cidrs>', "pod network CIDR(s), comma-separated: stands in for the Node's pod CIDR and for subnet.env")
    .option('--distro <name>', 'kubeadm, k3s, rke2 or microk8s (default: detected from units and files)')
    .option(...PROFILE_OPTION)
    .option('--json', 'print the findings as one JSON document on stdout')
    .option('--verbose', 'every evidence line, and stack traces on errors')
    .option('--no-color', 'no colour')
    .addHelpText('after', '\nExit codes: 0 healthy, 1 findings (an error or a warning; notes alone are healthy), 2 bad usage.\n')
    .action(async (opts: Record<string, unknown>) => {
      done(await diagnose(io, parse(opts)));
    });
}
