// CNI network configuration files (.conf single plugin, .conflist plugin chain), as libcni loads them.
import { z } from 'zod';
import { ParseError } from './errors.js';
import { deviceNameProblem, networkNameProblem, pluginTypeProblem } from '../util/names.js';

const Plugin = z.looseObject({
  type: z.string(),
  delegate: z.looseObject({ bridge: z.string().optional() }).optional(),
  bridge: z.string().optional(),
  ipam: z.looseObject({ type: z.string().optional() }).optional(),
});

const ConfList = z.looseObject({ name: z.string(), plugins: z.array(Plugin).min(1) });
const SingleConf = Plugin.extend({ name: z.string() });

export interface CniConfig {
  file: string;
  name: string;
  types: string[];
  /** Bridges the config names, for delegate-style plugins (flannel) and bridge plugin configs. */
  bridges: string[];
  /** bridge: the bridge plugin's `bridge` (cni0 when unset), for profiles that qualify the generic type. */
  plugins: Array<{ type: string; ipam?: string; bridge?: string }>;
  /**
   * Why nothing may be derived from this config (a network name outside the CNI spec's grammar, a
   * bridge name the kernel would refuse, a plugin type that is not a file name): its network's IPAM,
   * result caches, bridge and firewall comments stay, and so does the file.
   */
  untrusted?: string;
  /** Set when the config is Multus's (its first plugin is of type multus or multus-shim). */
  multus?: MultusRef;
}

/**
 * What a Multus config points at, as k8snetworkplumbingwg/multus-cni reads it (pkg/types/types.go
 * NetConf, pkg/server/api/shim.go ShimNetConf): the thin plugin (type multus) embeds its delegates,
 * the first being the cluster network (the "master plugin"); the thick shim (type multus-shim) names
 * the cluster network's config file in clusterNetwork and hands every request to multus-daemon over
 * <daemonSocketDir>/multus.sock. clusterNetwork wins over delegates when both are set.
 */
export interface MultusRef {
  kind: 'thin' | 'thick';
  /** delegates[0], parsed; its file is the Multus config's. */
  delegate?: CniConfig;
  /** Why delegates[0] could not be read as a CNI config. */
  delegateError?: string;
  /** delegates[1..], parsed: Multus adds every delegate to every pod, not only the first. */
  also?: CniConfig[];
  /**
   * Why some network Multus adds to every pod is unknown (a later delegate that does not parse,
   * defaultNetworks naming NetworkAttachmentDefinitions): then any config may be in use.
   */
  alsoError?: string;
  /** A network name (a NetworkAttachmentDefinition or a config's name) or, with a slash, a file or directory path. */
  clusterNetwork?: string;
  kubeconfig?: string;
  /** Where a clusterNetwork name is looked up as a config file (default /etc/cni/multus/net.d). */
  confDir: string;
  /** Thick only: the daemon's socket. */
  socket?: string;
}

/** Plugin types of Multus's thin plugin and thick shim (cmd/install_multus). */
export const MULTUS_TYPES = ['multus', 'multus-shim'];
/** multus-cni pkg/types/conf.go defaultConfDir, pkg/server/api/api.go defaultMultusRunDir + socket.go serverSocketName. */
const MULTUS_CONF_DIR = '/etc/cni/multus/net.d';
const MULTUS_RUN_DIR = '/run/multus/';

/** Extensions libcni reads from the conf dir. */
export const CNI_CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];

function describe(issue: z.core.$ZodIssue): string {
  const where = issue.path.join('.') || '(root)';
  const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
  return missing ? `${where}: missing` : `${where}: ${issue.message}`;
}

export function parseCniConfig(file: string, text: string): CniConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ParseError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  // libcni reads a .conflist (or anything with a "plugins" key) as a list, the rest as one plugin:
  // report errors against the shape the file claims to be.
  return fromJson(file, json, file.endsWith('.conflist'));
}

function fromJson(file: string, json: unknown, conflistName: boolean): CniConfig {
  const isList = conflistName || (typeof json === 'object' && json !== null && 'plugins' in json);
  const asList = ConfList.safeParse(json);
  if (isList && !asList.success) throw new ParseError(`${file}: ${describe(asList.error.issues[0]!)}`);
  const plugins = asList.success
    ? asList.data.plugins
    : (() => {
        const single = SingleConf.safeParse(json);
        if (!single.success) throw new ParseError(`${file}: ${describe(single.error.issues[0]!)}`);
        return [single.data];
      })();
  const name = asList.success ? asList.data.name : (json as { name: string }).name;
  const bridges = new Set<string>();
  for (const p of plugins) {
    if (p.type === 'flannel') bridges.add(p.delegate?.bridge ?? 'cni0');
    if (p.type === 'bridge') bridges.add(p.bridge ?? 'cni0');
  }
  const problem =
    networkNameProblem(name) ??
    plugins.map((p) => pluginTypeProblem(p.type)).find(Boolean) ??
    [...bridges].map((b) => deviceNameProblem(b)).find(Boolean) ??
    null;
  return {
    file,
    name,
    types: plugins.map((p) => p.type),
    bridges: [...bridges],
    plugins: plugins.map((p) => ({ type: p.type, ipam: p.ipam?.type, ...(p.type === 'bridge' ? { bridge: p.bridge ?? 'cni0' } : {}) })),
    ...(problem ? { untrusted: problem } : {}),
    ...(MULTUS_TYPES.includes(plugins[0]!.type) ? { multus: multusRef(file, plugins[0]!) } : {}),
  };
}

const text = (x: unknown): string | undefined => (typeof x === 'string' && x ? x : undefined);

function multusRef(file: string, p: Record<string, unknown>): MultusRef {
  const kind = p.type === 'multus-shim' ? 'thick' : 'thin';
  const ref: MultusRef = { kind, confDir: text(p.confDir) ?? MULTUS_CONF_DIR };
  const clusterNetwork = text(p.clusterNetwork);
  if (clusterNetwork) ref.clusterNetwork = clusterNetwork;
  const kubeconfig = text(p.kubeconfig);
  if (kubeconfig) ref.kubeconfig = kubeconfig;
  if (kind === 'thick') {
    const dir = text(p.daemonSocketDir) ?? MULTUS_RUN_DIR;
    ref.socket = `${dir.replace(/\/+$/, '')}/multus.sock`;
  }
  const delegates: unknown[] = Array.isArray(p.delegates) ? p.delegates : [];
  if (delegates.length && !clusterNetwork) {
    try {
      ref.delegate = fromJson(file, delegates[0], false);
    } catch (err) {
      ref.delegateError = (err as Error).message.replace(`${file}: `, '');
    }
    // multus-cni pkg/types/conf.go LoadNetConf loads every delegate and cmdAdd adds each to the pod.
    for (const [i, d] of delegates.slice(1).entries()) {
      try {
        (ref.also ??= []).push(fromJson(file, d, false));
      } catch (err) {
        ref.alsoError = `its delegate ${i + 2}: ${(err as Error).message.replace(`${file}: `, '')}`;
      }
    }
  }
  // Networks added to every pod by name (k8sclient GetDefaultNetworks): which CNI each is, cni-sweep cannot tell.
  const defaults = Array.isArray(p.defaultNetworks) ? p.defaultNetworks.filter((x) => typeof x === 'string' && x) : [];
  if (defaults.length) ref.alsoError = `its defaultNetworks ${defaults.join(', ')} are added to every pod`;
  return ref;
}
