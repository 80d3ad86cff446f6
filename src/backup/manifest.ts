// The backup manifest: what a run removed, so `restore` can put files and firewall rules back.
import { z } from 'zod';

/** 2: adds `members`. Version 1 manifests are still read (their files.tar is checked without them). */
export const MANIFEST_VERSION = 2;

export const MemberSchema = z.object({
  name: z.string(),
  type: z.enum(['file', 'dir', 'symlink', 'hardlink', 'other']),
  size: z.number().int().nonnegative(),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  link: z.string().optional(),
});

export const ManifestSchema = z.object({
  version: z.union([z.literal(1), z.literal(MANIFEST_VERSION)]),
  tool: z.string(),
  created: z.string(),
  node: z.string(),
  root: z.string(),
  cni: z.array(z.string()),
  /** Node paths in files.tar. */
  files: z.array(z.string()),
  /** Every member of files.tar as tar wrote it (name, type, size, sha256 of a file, link target); version 2. */
  members: z.array(MemberSchema).optional(),
  interfaces: z.array(z.string()),
  routes: z.array(z.string()),
  /**
   * BPF programs detached (tc filters, clsact qdiscs, XDP) and bpffs pins removed: recorded only. A pinned
   * object lives in the kernel and cannot be put back; the CNI's agent creates it again.
   */
  bpf: z.object({ attachments: z.array(z.string()), pins: z.array(z.string()), restorable: z.literal(false) }).optional(),
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
  /**
   * ipsets the run destroyed, each as `ipset save <name>` wrote it: restore recreates those that
   * are gone before the rules that match them. Absent from backups taken before it was kept.
   */
  ipsets: z.array(z.object({ name: z.string(), file: z.string() })).default([]),
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
