// Types for client.mjs: the fields the tests read, in the protojson shape the client returns.
export declare const DEFAULT_ENDPOINT: string;
export declare function protojson(v: unknown): unknown;

export interface PodSandbox {
  id: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  createdAt: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
}

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandbox['metadata'];
  state: PodSandbox['state'];
  network?: { ip: string; additionalIps: Array<{ ip: string }> };
  linux?: { namespaces?: { options?: Record<string, string> } };
}

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  logDirectory?: string;
  portMappings?: Array<{ protocol?: 'TCP' | 'UDP' | 'SCTP'; containerPort: number; hostPort: number; hostIp?: string }>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { cgroupParent?: string; securityContext?: Record<string, unknown> };
}

export declare class CriClient {
  constructor(endpoint?: string, timeoutMs?: number);
  version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>;
  runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string): Promise<string>;
  stopPodSandbox(id: string): Promise<unknown>;
  removePodSandbox(id: string): Promise<unknown>;
  podSandboxStatus(id: string, verbose?: boolean): Promise<{ status: PodSandboxStatus; info: Record<string, string> }>;
  listPodSandbox(filter?: Record<string, unknown> | null): Promise<PodSandbox[]>;
  close(): void;
}
