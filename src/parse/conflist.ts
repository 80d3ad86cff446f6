// CNI network configuration files (.conf single plugin, .conflist plugin chain), as libcni loads them.
import { z } from 'zod';

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
  plugins: Array<{ type: string; ipam?: string }>;
}

/** Extensions libcni reads from the conf dir. */
export const CNI_CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];

export function parseCniConfig(file: string, text: string): CniConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const asList = ConfList.safeParse(json);
  const plugins = asList.success
    ? asList.data.plugins
    : (() => {
        const single = SingleConf.safeParse(json);
        if (!single.success) {
          const issue = single.error.issues[0];
          throw new Error(`${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
        }
        return [single.data];
      })();
  const name = asList.success ? asList.data.name : (json as { name: string }).name;
  const bridges = new Set<string>();
  for (const p of plugins) {
    if (p.type === 'flannel') bridges.add(p.delegate?.bridge ?? 'cni0');
    if (p.type === 'bridge') bridges.add(p.bridge ?? 'cni0');
  }
  return { file, name, types: plugins.map((p) => p.type), bridges: [...bridges], plugins: plugins.map((p) => ({ type: p.type, ipam: p.ipam?.type })) };
}
