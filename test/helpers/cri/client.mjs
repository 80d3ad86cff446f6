// A small CRI client (runtime.v1.RuntimeService over gRPC on the runtime's unix socket), loaded
// from the CRI's own api.proto beside this file. Plain JavaScript so that the crictl stand-in runs
// it with node alone; the tests import it too.
import path from 'node:path';
import { setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const PROTO = path.join(path.dirname(fileURLToPath(import.meta.url)), 'api.proto');
/** crictl's first default endpoint. */
export const DEFAULT_ENDPOINT = 'unix:///run/containerd/containerd.sock';

// Shaped like protojson with EmitDefaultValues (what crictl prints): lowerCamelCase names, int64 as
// strings, enums by name, empty scalars, lists and maps present.
const definition = protoLoader.loadSync(PROTO, {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
});
const RuntimeService = grpc.loadPackageDefinition(definition).runtime.v1.RuntimeService;

/** Unset message fields come back as null; protojson leaves them out. */
export function protojson(v) {
  if (Array.isArray(v)) return v.map(protojson);
  if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
    const out = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = protojson(x);
    return out;
  }
  return v;
}

export class CriClient {
  constructor(endpoint = DEFAULT_ENDPOINT, timeoutMs = 60_000) {
    this.timeoutMs = timeoutMs;
    this.client = new RuntimeService(endpoint, grpc.credentials.createInsecure());
  }

  /** One call; when the runtime restarted under an open channel (UNAVAILABLE), it is tried again as kubelet would. */
  async call(method, request) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise((resolve, reject) => {
          const deadline = new Date(Date.now() + this.timeoutMs);
          this.client[method](request, { deadline }, (err, res) => (err ? reject(err) : resolve(protojson(res))));
        });
      } catch (e) {
        if (e.code !== grpc.status.UNAVAILABLE || attempt >= 4) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  version() {
    return this.call('Version', { version: 'v1' });
  }
  /** Resolves to the new sandbox's id. */
  async runPodSandbox(config, runtimeHandler = '') {
    return (await this.call('RunPodSandbox', { config, runtimeHandler })).podSandboxId;
  }
  stopPodSandbox(podSandboxId) {
    return this.call('StopPodSandbox', { podSandboxId });
  }
  removePodSandbox(podSandboxId) {
    return this.call('RemovePodSandbox', { podSandboxId });
  }
  podSandboxStatus(podSandboxId, verbose = false) {
    return this.call('PodSandboxStatus', { podSandboxId, verbose });
  }
  async listPodSandbox(filter = null) {
    return (await this.call('ListPodSandbox', filter ? { filter } : {})).items;
  }
  close() {
    this.client.close();
  }
}
