// A Multus config outliving what it needs is the most reported failure after a CNI removal: it sorts
// first (00-multus.conf), so every new pod fails in Multus while the rest of the conf dir looks fine.
// Three ways (k8snetworkplumbingwg/multus-cni): its delegate is gone (the cluster network's plugin
// or clusterNetwork file), its kubeconfig is gone (pkg/k8sclient/kubeconfig.go: "GetK8sClient:
// failed to get context for the kubeconfig"), or, thick, nothing serves <daemonSocketDir>/multus.sock
// (pkg/server/api/api.go DoCNI: "failed to send CNI request"), which also blocks KillPodSandbox.
import type { Host } from '../../host/host.js';
import { ownsConfig } from '../../inspect.js';
import { delegateVia } from '../../multus.js';
import { agentsOf } from '../../profiles/targets.js';
import { kubectl } from '../helpers.js';
import { removalFix } from '../owned.js';
import { CNI_BIN_DIR } from '../view.js';
import type { Check, ConfigEntry, Finding, NodeView } from '../types.js';

/** What the check needs beyond the conf dir: which paths Multus configs name exist, and whether Multus runs. */
export interface MultusState {
  /** Node paths (kubeconfigs, sockets) a Multus config names, and whether each exists. */
  paths: Map<string, boolean>;
  /** Multus's own processes running (thin_entrypoint, multus-daemon): argv[0]'s base name and pid. */
  agents: Array<{ name: string; pid: number }>;
}

export async function gatherMultus(
  host: Host,
  configs: ConfigEntry[],
  view: { allProfiles: NodeView['allProfiles'] },
): Promise<MultusState> {
  const paths = new Map<string, boolean>();
  for (const c of configs) {
    const m = c.config?.multus;
    if (!m) continue;
    for (const p of [m.kubeconfig, m.socket]) if (p) paths.set(p, (await host.entryType(p).catch(() => null)) !== null);
  }
  const profile = view.allProfiles.find((p) => p.name === 'multus');
  const agents =
    configs.some((c) => c.config?.multus) && profile
      ? agentsOf(profile, await host.processes().catch(() => [])).map((p) => ({
          name: (p.argv[0] ?? p.comm).split('/').pop()!,
          pid: p.pid,
        }))
      : [];
  return { paths, agents };
}

/** The fix once Multus itself is gone: remove its config and multus.d/ (a live Multus refuses --cni multus). */
function multusFix(v: NodeView, live: boolean): string[] | null {
  return live ? kubectl(v, '-n', 'kube-system', 'rollout', 'restart', 'daemonset', 'kube-multus-ds') : removalFix(v, ['multus']);
}

const SYMPTOMS =
  'New pods fail in Multus before any network is set up (FailedCreatePodSandBox): `plugin type="multus" name="multus-cni-network" failed (add): Multus: [...]: error waiting for pod: Unauthorized`, ' +
  'or with the thick plugin `plugin type="multus-shim" ... CmdAdd (shim): failed to send CNI request: ... dial unix /run/multus/multus.sock: connect: connection refused`, which also blocks KillPodSandbox of old pods.';

export const multusConfigs: Check = {
  name: 'multus',
  run(v) {
    const out: Finding[] = [];
    const state = v.multus ?? { paths: new Map<string, boolean>(), agents: [] };
    const live = state.agents.length > 0;
    const running = state.agents.map((a) => `${a.name} (pid ${a.pid})`).join(', ');
    const valid = v.configs.filter((c) => c.config);
    const binDir = v.cniBinDir ?? CNI_BIN_DIR;
    for (const c of valid) {
      const m = c.config!.multus;
      if (!m) continue;
      const used = c === valid[0];
      const severity = used ? 'error' : 'warning';
      const where = used ? 'the runtime loads it first' : 'the runtime does not load it now (it is not the first), but will once it is';
      const agentLine = live ? [`Multus runs: ${running}`] : ['no Multus process runs (thin_entrypoint, multus-daemon)'];

      // Its delegate: a clusterNetwork file that is gone, or a delegate whose plugins are not installed.
      const d = m.delegate;
      const missingBins = d && v.cniBins ? d.types.filter((t) => !t.includes('/') && !v.cniBins!.has(t)) : [];
      const fileGone = !d && m.clusterNetwork?.includes('/') && m.delegateError?.includes('no such file');
      if (fileGone || missingBins.length) {
        const owners = d ? v.allProfiles.filter((p) => p.name !== 'multus' && ownsConfig(p, d)).map((p) => p.name) : [];
        out.push({
          id: 'multus-delegate-missing',
          severity,
          title: `${c.file} hands pods to a CNI that is not installed: ${fileGone ? `${m.clusterNetwork} is gone` : `${owners.join(', ') || d!.name} (${missingBins.join(', ')} missing from ${binDir})`}`,
          evidence: [
            `${c.file}: ${m.kind === 'thick' ? 'multus-shim' : 'multus'} config; ${where}`,
            fileGone
              ? `clusterNetwork: ${m.delegateError}`
              : `delegate: network ${d!.name}, plugins ${d!.types.join(', ')} (${delegateVia(c.config!)})`,
            ...missingBins.map((t) => `${binDir}/${t}: missing`),
            ...agentLine,
          ],
          why:
            `${SYMPTOMS} Here the cluster network Multus delegates to is gone (\`failed to find plugin "${missingBins[0] ?? 'the delegate'}" in path [${binDir}]\`, or \`error loading CNI conflist file\`): ` +
            'its CNI was removed and the Multus config that embeds or names it outlived it. Removing that CNI with cni-sweep removes this Multus config with it; reinstalling the CNI brings the delegate back.',
          fix: owners.length ? removalFix(v, owners) : multusFix(v, live),
        });
      }

      if (m.kubeconfig && state.paths.get(m.kubeconfig) === false)
        out.push({
          id: 'multus-kubeconfig-missing',
          severity,
          title: `${c.file} names a kubeconfig that is gone: ${m.kubeconfig}`,
          evidence: [`${c.file}: kubeconfig ${m.kubeconfig}; ${where}`, `${m.kubeconfig}: no such file`, ...agentLine],
          why:
            `${SYMPTOMS} Here Multus cannot reach the API at all: \`GetK8sClient: failed to get context for the kubeconfig ${m.kubeconfig}: stat ${m.kubeconfig}: no such file or directory\`. ` +
            (live
              ? 'Multus runs: restarting its DaemonSet writes the kubeconfig again.'
              : 'Multus was removed and its config left behind: remove the config and multus.d/ (the next config in the directory, the pod network, takes over).'),
          fix: multusFix(v, live),
        });

      const daemon = state.agents.some((a) => a.name === 'multus-daemon');
      if (m.socket && (state.paths.get(m.socket) === false || !daemon))
        out.push({
          id: 'multus-socket-missing',
          severity,
          title:
            state.paths.get(m.socket) === false
              ? `${c.file} is the thick plugin's, and its daemon socket ${m.socket} is gone`
              : `${c.file} is the thick plugin's, and no multus-daemon serves ${m.socket}`,
          evidence: [
            `${c.file}: multus-shim config; ${where}`,
            `${m.socket}: ${state.paths.get(m.socket) === false ? 'no such file' : 'present'}`,
            daemon ? `multus-daemon runs: ${running}` : 'no multus-daemon process runs',
          ],
          why:
            `${SYMPTOMS} The shim does nothing itself: every ADD and DEL goes to multus-daemon over ${m.socket} ` +
            `(\`dial unix ${m.socket}: connect: ${state.paths.get(m.socket) === false ? 'no such file or directory' : 'connection refused'}\`), so with the daemon gone no pod starts and none is torn down.`,
          fix: multusFix(v, daemon),
        });
    }
    return out;
  },
};
