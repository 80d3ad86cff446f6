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
}

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
  const isList = file.endsWith('.conflist') || (typeof json === 'object' && json !== null && 'plugins' in json);
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
  };
}
