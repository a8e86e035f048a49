/**
 * Pods as the kubelet would run them, read from rendered manifests: the
 * sidecar config a container mounts from a ConfigMap, and the environment it
 * gets (env, envFrom, downward API, and the Secrets the docs tell you to create).
 */
import { strict as assert } from 'node:assert';
import { posix } from 'node:path';
import { DATABASE_URL } from '../helpers/servers';
import type { K8sObject } from './support';

/** What the docs tell you to put in each Secret (docs/deploy.md, docs/quickstart.md); placeholders except where a real service stands in. */
export const SECRETS: Record<string, Record<string, string>> = {
  'health-sidecar-env': { HEALTH_ADMIN_KEY: 'admin-key-from-the-secret-0123456789', DATABASE_URL },
  'endpoint-monitor-secrets': { 'api-token': 'api-token-from-the-secret', 'webhook-secret': 'webhook-secret-from-the-secret', 'webhook-url': 'https://hooks.example.com/health' },
};

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; configMapKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } } };
type EnvFrom = { configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean }; prefix?: string };
export type Container = { name: string; args?: string[]; env?: EnvVar[]; envFrom?: EnvFrom[]; volumeMounts?: { name: string; mountPath: string }[] };
type PodSpec = { initContainers?: Container[]; containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] };
type Workload = K8sObject & { spec: { template: { spec: PodSpec } } };

function configMapData(objects: K8sObject[], name: string): Record<string, string> | undefined {
  return (objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name) as { data?: Record<string, string> } | undefined)?.data;
}

/** The container's environment as the kubelet would set it (pod `podName`). */
export function containerEnv(objects: K8sObject[], container: Container, podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  const secret = (name: string, optional: boolean | undefined): Record<string, string> | undefined => {
    const values = SECRETS[name];
    assert.ok(values || optional, `container ${container.name} needs Secret ${name}, which the test (and so the docs) does not create`);
    return values;
  };
  for (const from of container.envFrom ?? []) {
    const data = from.configMapRef ? configMapData(objects, from.configMapRef.name) : from.secretRef ? secret(from.secretRef.name, from.secretRef.optional) : undefined;
    if (from.configMapRef) assert.ok(data || from.configMapRef.optional, `ConfigMap ${from.configMapRef.name} is rendered`);
    for (const [k, v] of Object.entries(data ?? {})) env[`${from.prefix ?? ''}${k}`] = v;
  }
  const fields: Record<string, string> = { 'metadata.name': podName, 'metadata.namespace': 'default', 'spec.nodeName': 'node-1' };
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) env[e.name] = fields[e.valueFrom.fieldRef.fieldPath] ?? assert.fail(`no stand-in value for fieldRef ${e.valueFrom.fieldRef.fieldPath}`);
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key, optional } = e.valueFrom.secretKeyRef;
      const value = secret(name, optional)?.[key];
      assert.ok(value !== undefined || optional, `Secret ${name} key ${key}`);
      if (value !== undefined) env[e.name] = value;
    } else if (e.valueFrom?.configMapKeyRef) {
      const { name, key, optional } = e.valueFrom.configMapKeyRef;
      const value = configMapData(objects, name)?.[key];
      assert.ok(value !== undefined || optional, `ConfigMap ${name} key ${key}`);
      if (value !== undefined) env[e.name] = value;
    }
  }
  return env;
}

export interface MountedConfig {
  workload: Workload;
  container: Container;
  configMap: string;
  text: string;
}

/** Every container that runs `run --config FILE` with FILE from a ConfigMap volume, and that file's text. */
export function mountedConfigs(objects: K8sObject[]): MountedConfig[] {
  const out: MountedConfig[] = [];
  for (const workload of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet') as Workload[]) {
    const pod = workload.spec.template.spec;
    for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
      const args = container.args ?? [];
      const i = args.indexOf('--config');
      if (args[0] !== 'run' || i < 0) continue;
      const path = args[i + 1]!;
      const mount = container.volumeMounts?.find((m) => posix.dirname(path) === m.mountPath);
      assert.ok(mount, `${workload.metadata.name}/${container.name}: ${path} is on a mounted volume`);
      const volume = pod.volumes?.find((v) => v.name === mount.name);
      assert.ok(volume?.configMap, `${workload.metadata.name}/${container.name}: volume ${mount.name} is a ConfigMap`);
      const text = configMapData(objects, volume.configMap.name)?.[posix.basename(path)];
      assert.ok(text, `ConfigMap ${volume.configMap.name} has key ${posix.basename(path)}`);
      out.push({ workload, container, configMap: volume.configMap.name, text });
    }
  }
  return out;
}

