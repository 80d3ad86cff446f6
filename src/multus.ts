// Multus is a meta-plugin: its config (00-multus.conf, loaded first) hands every pod to a delegate,
// the cluster network. Which CNI that is decides whether the Multus config outlives what it points
// at: a run removing the delegate's CNI removes the Multus config too, and the runtime's CNI is the
// delegate's. Facts from k8snetworkplumbingwg/multus-cni: pkg/types/conf.go (LoadNetConf: the first
// delegate is the master plugin; clusterNetwork replaces delegates), pkg/k8sclient/k8sclient.go
// getNetDelegate (a clusterNetwork with a slash is a file or directory, else a
// NetworkAttachmentDefinition or the config of that name in confDir), pkg/server/config/manager.go
// (the thick daemon writes clusterNetwork as its own path to the master config, /host/etc/cni/net.d/...).
import path from 'node:path';
import type { Host } from './host/host.js';
import { CNI_CONF_EXTENSIONS, parseCniConfig, type CniConfig } from './parse/conflist.js';

/** Where a config the thick daemon names by its container path (/host/etc/cni/net.d/X) is on the node. */
const CONTAINER_CONF_DIR = /^\/.+(\/etc\/cni\/net\.d\/[^/]+)$/;

async function readConfig(host: Host, file: string): Promise<CniConfig | string> {
  const text = await host.readFile(file).catch(() => null);
  if (text === null) return `${file}: no such file`;
  try {
    return parseCniConfig(file, text);
  } catch (err) {
    return (err as Error).message;
  }
}

async function firstInDir(host: Host, dir: string): Promise<CniConfig | string> {
  const entries = (await host.readDir(dir).catch(() => null)) ?? [];
  const first = entries.find((e) => e.type !== 'dir' && CNI_CONF_EXTENSIONS.some((x) => e.name.endsWith(x)));
  return first ? readConfig(host, `${dir}/${first.name}`) : `${dir}: no CNI config in it`;
}

/** The config a clusterNetwork path names, or why there is none. */
async function byPath(host: Host, ref: string, configs: CniConfig[], dirs: string[]): Promise<CniConfig | string> {
  const local = configs.find((c) => c.file === ref);
  if (local) return local;
  const type = await host.entryType(ref).catch(() => null);
  if (type === 'dir') return firstInDir(host, ref);
  if (type !== null) return readConfig(host, ref);
  // Not on the node as written: the thick daemon's mount of the conf dir (/host/etc/cni/net.d).
  const m = CONTAINER_CONF_DIR.exec(ref);
  if (m) {
    const base = path.posix.basename(ref);
    const found = configs.find((c) => dirs.includes(path.posix.dirname(c.file)) && path.posix.basename(c.file) === base);
    if (found) return found;
    return `${ref}: no such file (nor ${dirs.map((d) => `${d}/${base}`).join(', ')})`;
  }
  return `${ref}: no such file`;
}

/** The config of this network name in Multus's confDir or the conf dirs, or why there is none. */
async function byName(host: Host, name: string, confDir: string, configs: CniConfig[]): Promise<CniConfig | string> {
  for (const { name: entry, type } of (await host.readDir(confDir).catch(() => null)) ?? []) {
    if (type === 'dir' || !CNI_CONF_EXTENSIONS.some((x) => entry.endsWith(x))) continue;
    const c = await readConfig(host, `${confDir}/${entry}`);
    if (typeof c !== 'string' && c.name === name && !c.multus) return c;
  }
  const local = configs.find((c) => c.name === name && !c.multus);
  if (local) return local;
  return `clusterNetwork "${name}" names no config file on this node (it may name a NetworkAttachmentDefinition, which cni-sweep cannot read)`;
}

/**
 * Fills in the delegate of each Multus config that names its cluster network instead of embedding
 * it. An unresolved one keeps delegateError: which CNI it hands pods to is unknown, so nothing is
 * decided from it. `configs` are the conf dirs' configs (in the runtime's order).
 */
export async function resolveMultus(host: Host, configs: CniConfig[], dirs: string[]): Promise<CniConfig[]> {
  for (const c of configs) {
    const m = c.multus;
    if (!m?.clusterNetwork || m.delegate) continue;
    const found = m.clusterNetwork.includes('/')
      ? await byPath(host, m.clusterNetwork, configs, dirs)
      : await byName(host, m.clusterNetwork, m.confDir, configs);
    if (typeof found === 'string') m.delegateError = found;
    else if (found.multus) m.delegateError = `clusterNetwork ${m.clusterNetwork} is a Multus config itself`;
    else m.delegate = found;
  }
  return configs;
}

/** Whether a config is Multus's. */
export const isMultus = (c: CniConfig): boolean => c.multus !== undefined;

/** "its first delegate (embedded)" or "clusterNetwork X": how a Multus config names its delegate, for messages. */
export function delegateVia(c: CniConfig): string {
  const m = c.multus!;
  if (!m.clusterNetwork) return 'its first delegate, embedded in it';
  const file = m.delegate && m.delegate.file !== m.clusterNetwork ? ` (${m.delegate.file})` : '';
  return `its clusterNetwork ${m.clusterNetwork}${file}`;
}
