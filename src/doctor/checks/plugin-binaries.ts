// Every plugin a config makes the runtime execute must be in /opt/cni/bin (CNI_PATH): the chained
// plugins, their IPAM plugins, and what flannel delegates to (its delegate type, default bridge,
// with host-local IPAM unless the config names another), as flannel-io/cni-plugin does.
import { profileNamed } from '../helpers.js';
import { removalFix } from '../owned.js';
import { CNI_BIN_DIR } from '../view.js';
import type { Check, ConfigEntry, Finding } from '../types.js';

type Json = Record<string, unknown>;
const obj = (x: unknown): Json | null => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Json) : null);
const str = (x: unknown): string | undefined => (typeof x === 'string' && x ? x : undefined);

/** Each binary the runtime needs for this config, with the role it plays. */
export function neededPlugins(c: ConfigEntry): Array<{ type: string; role: string }> {
  const root = obj(c.json);
  if (!root) return [];
  const plugins = Array.isArray(root.plugins) ? root.plugins.map(obj).filter((p): p is Json => p !== null) : [root];
  const out: Array<{ type: string; role: string }> = [];
  const add = (type: string | undefined, role: string) => {
    // A type with a slash is not a plugin name libcni would look up.
    if (type && !type.includes('/') && !out.some((o) => o.type === type)) out.push({ type, role });
  };
  for (const p of plugins) {
    const type = str(p.type);
    add(type, 'plugin');
    const ipam = str(obj(p.ipam)?.type);
    if (type === 'flannel') {
      add(str(obj(p.delegate)?.type) ?? 'bridge', "flannel's delegate");
      add(ipam ?? 'host-local', 'IPAM flannel hands its delegate');
    } else add(ipam, `IPAM of ${type}`);
  }
  return out;
}

export const pluginBinaries: Check = {
  name: 'plugin-binaries',
  run(v) {
    const out: Finding[] = [];
    const valid = v.configs.filter((c) => c.config);
    const binDir = v.cniBinDir ?? CNI_BIN_DIR;
    for (const c of valid) {
      const missing = neededPlugins(c).filter((n) => !v.cniBins?.has(n.type));
      if (!missing.length) continue;
      const used = c === valid[0];
      // The CNI's own plugin gone too means the CNI was removed and its config left behind.
      const mainGone =
        c.owners.length > 0 && c.owners.every((o) => missing.some((m) => profileNamed(v, o)?.config.pluginTypes.includes(m.type)));
      const first = missing[0]!.type;
      out.push({
        id: 'cni-plugin-missing',
        severity: used ? 'error' : 'warning',
        title: `${c.file} needs plugins missing from ${binDir}: ${missing.map((m) => m.type).join(', ')}`,
        evidence: [
          ...(v.cniBins === null ? [`${binDir}: no such directory`] : []),
          ...missing.map((m) => `${binDir}/${m.type}: missing (${m.role} in ${c.file})`),
        ],
        why:
          (used
            ? `Every pod sandbox on this node fails (FailedCreatePodSandBox): \`failed to find plugin "${first}" in path [${binDir}]\`.`
            : `The runtime does not use this config now (it is not the first), but fails with \`failed to find plugin "${first}" in path [${binDir}]\` once it is.`) +
          (mainGone
            ? ` The ${c.owners.join(', ')} plugin itself is gone: the CNI was removed and its config left behind.`
            : " Install the missing plugins (the containernetworking plugins: the kubernetes-cni package, or the CNI's installer) or remove the config."),
        fix: mainGone ? removalFix(v, c.owners) : null,
      });
    }
    return out;
  },
};
