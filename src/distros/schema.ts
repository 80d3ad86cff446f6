// What a Kubernetes distribution changes about a node's CNI layout, as data. Adding one is adding one of these.
import { z } from 'zod';

const NodePath = z
  .string()
  .regex(/^\/[^\0]*$/, 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

/** Node paths may use {dataDir}: the distribution's data dir as read from its config (k3s: data-dir). */
const Templated = z
  .string()
  .regex(/^(\/|\{dataDir\}\/)[^\0]*$/, 'must be an absolute path or start with {dataDir}/')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

/**
 * Prefixes a distribution adds inside a namespace cni-sweep otherwise never touches (KUBE- is
 * kube-proxy's, CNI- the plugins'): only exact sub-prefixes, never the bare namespace.
 */
const SubPrefix = z.string().refine((p) => p.length > 0 && !['KUBE-', 'KUBE', 'CNI-', 'CNI', 'kube-', 'cni-'].includes(p), {
  error: 'must be an exact sub-prefix, not a bare KUBE-/CNI- namespace',
});

/** State and rules the distribution adds to one profile's (k3s's netpol goes with its Flannel). */
const Adds = z.strictObject({
  statePaths: z.array(Templated).default([]),
  /** Where the distribution has the CNI write its subnet.env instead of the profile's path (microk8s's flanneld --subnet-file). */
  subnetEnv: NodePath.optional(),
  chainPrefixes: z.array(SubPrefix).default([]),
  ipsetPrefixes: z.array(SubPrefix).default([]),
  comments: z.array(z.string()).default([]),
  nftables: z.array(z.strictObject({ family: z.enum(['ip', 'ip6', 'inet']), name: z.string() })).default([]),
  /** Config values that turn the additions off (k3s with `flannel-backend: none` has no Flannel for its netpol to go with). */
  unlessConfig: z.record(z.string(), z.string()).default({}),
});

export const DistroSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  description: z.string(),
  /** What marks a node as this distribution; the first unit found active (or present) names the role. */
  detect: z.strictObject({
    units: z.array(z.strictObject({ unit: z.string(), role: z.string().optional() })).default([]),
    paths: z.array(NodePath).default([]),
  }),
  /** A YAML config whose top-level `dataDirKey` moves the data dir (k3s, rke2). */
  config: z.strictObject({ file: NodePath, dataDirKey: z.string().optional(), defaultDataDir: NodePath.optional() }).optional(),
  cni: z.strictObject({
    /** Conf dirs, the runtime's first. Symlinks in them are resolved under --root, never followed out. */
    confDirs: z.array(Templated).min(1),
    /** Other conf dirs, the runtime's first, when the config says so (k3s with flannel-backend none reads /etc/cni/net.d). */
    confDirsWhen: z.array(z.strictObject({ config: z.record(z.string(), z.string()), confDirs: z.array(Templated).min(1) })).default([]),
    binDirs: z.array(Templated).min(1),
  }),
  /** The CRI socket crictl must use; absent: crictl's own default (kubeadm). */
  criSocket: NodePath.optional(),
  /** The admin kubeconfig the distribution writes on a server, for drain and uncordon (kubeadm: /etc/kubernetes/admin.conf). */
  kubeconfig: NodePath.optional(),
  /** Units in stop order. An empty runtime list: the runtime lives in the kubelet unit (k3s, rke2). */
  units: z.strictObject({ kubelet: z.array(z.string()), runtime: z.array(z.string()) }),
  /** Per profile name. */
  adds: z.record(z.string(), Adds).default({}),
});

export type Distro = z.infer<typeof DistroSchema>;
export type DistroInput = z.input<typeof DistroSchema>;
export type DistroAdds = z.infer<typeof Adds>;
