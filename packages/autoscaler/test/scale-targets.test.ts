// The autoscaler's scale targets run the ScaleTarget conformance suite: the KEDA external
// scaler (its gRPC server, which KEDA reads), and a Deployment's scale subresource.
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { scaleTargetConformance } from '@arteria/testing';
import { KedaExternalScaler, KubernetesDeploymentTarget } from '@arteria/autoscaler';

scaleTargetConformance('KEDA external scaler', async () => {
  const scaler = await KedaExternalScaler.start({ port: 0 });
  return { target: scaler, close: () => scaler.close() };
});

scaleTargetConformance('KEDA external scaler, one pool', async () => {
  const scaler = await KedaExternalScaler.start({ port: 0 });
  return { target: scaler.poolTarget('gpu'), close: () => scaler.close() };
});

// No API server can run on this machine (no kube-apiserver binary); this one answers the
// scale subresource's GET and merge PATCH as the API server documents them, with two
// replicas ready at most.
scaleTargetConformance('Kubernetes Deployment scale subresource', async () => {
  let replicas = 1;
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url?.split('?')[0] !== '/apis/apps/v1/namespaces/imaging/deployments/workers/scale') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, message: 'not found' }));
        return;
      }
      if (req.method === 'PATCH') replicas = (JSON.parse(body) as { spec: { replicas: number } }).spec.replicas;
      const scale = { kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name: 'workers', namespace: 'imaging' }, spec: { replicas }, status: { replicas: Math.min(replicas, 2), selector: 'app=workers' } };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(scale));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'test', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'autoscaler', token: 'test-token' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'autoscaler' }],
    currentContext: 'test',
  });
  return { target: new KubernetesDeploymentTarget({ namespace: 'imaging', deployment: 'workers', kubeConfig }), close: () => new Promise((r) => server.close(() => r())) };
});

describe('Kubernetes Deployment target', () => {
  it('opened with a kubeconfig that cannot be read, fails at once, naming the file', async () => {
    const before = process.env.KUBECONFIG;
    process.env.KUBECONFIG = '/nonexistent/arteria-kubeconfig';
    try {
      await expect(KubernetesDeploymentTarget.open({ namespace: 'imaging', deployment: 'workers' })).rejects.toThrow(/nonexistent\/arteria-kubeconfig/);
    } finally {
      if (before === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = before;
    }
  });
});

describe('KEDA external scaler lifecycle', () => {
  it('closes once (concurrent closes share it), refuses a count after close with ILLEGAL_STATE, and closes with await using', async () => {
    const scaler = await KedaExternalScaler.start({ port: 0 });
    await scaler.setPoolReplicas('gpu', 2);
    await Promise.all([scaler.close(), scaler.close()]);
    await expect(scaler.setPoolReplicas('gpu', 3)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    await expect(scaler.poolTarget('cpu').setReplicas(1)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    let disposed: KedaExternalScaler | undefined;
    {
      await using scoped = await KedaExternalScaler.start({ port: 0 });
      disposed = scoped;
    }
    await expect(disposed.setReplicas(1)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
  });
});
