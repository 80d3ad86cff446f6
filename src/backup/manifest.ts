// The backup manifest: what a run removed, so `restore` can put files and firewall rules back.
import { z } from 'zod';

export const MANIFEST_VERSION = 1;

export const ManifestSchema = z.object({
  version: z.literal(MANIFEST_VERSION),
  tool: z.string(),
  created: z.string(),
  node: z.string(),
  root: z.string(),
  cni: z.array(z.string()),
  /** Node paths in files.tar. */
  files: z.array(z.string()),
  interfaces: z.array(z.string()),
  routes: z.array(z.string()),
  firewall: z.array(
    z.object({
      backend: z.string(),
      family: z.union([z.literal(4), z.literal(6)]),
      save: z.string(),
      restore: z.string(),
      undo: z.string(),
    }),
  ),
  nftables: z.array(z.object({ family: z.string(), name: z.string(), file: z.string() })),
  /** Facts read before anything was removed (network names, pod CIDRs), for reruns after a crash. */
  facts: z.array(
    z.object({
      cni: z.string(),
      networks: z.array(z.string()),
      bridges: z.array(z.string()),
      podNetworks: z.array(z.string()),
      nodeSubnets: z.array(z.string()),
    }),
  ),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export const CHECKSUMS = 'SHA256SUMS';
export const MANIFEST = 'manifest.json';
