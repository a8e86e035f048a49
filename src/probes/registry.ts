/** kind → probe factory. New kinds register here; nothing else switches on kind. */
import type { CheckConfig, CheckKind, CheckConfigOf } from '../config/types';
import { createDnsProbe } from './dns';
import { createHttpProbe } from './http';
import { createPostgresProbe } from './postgres';
import type { Probe, ProbeContext, ProbeFactory } from './probe';
import { createRedisProbe } from './redis';
import { createTcpProbe } from './tcp';

const factories: { [K in CheckKind]: ProbeFactory<CheckConfigOf<K>> } = {
  http: createHttpProbe,
  tcp: createTcpProbe,
  redis: createRedisProbe,
  postgres: createPostgresProbe,
  // loaded only when a grpc check exists (@grpc/grpc-js and protobufjs are heavy)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  grpc: (check, context) => (require('./grpc') as typeof import('./grpc')).createGrpcProbe(check, context),
  dns: createDnsProbe,
};

export function createProbe(check: CheckConfig, context: ProbeContext): Probe {
  const factory = factories[check.kind] as ProbeFactory<CheckConfig>;
  return factory(check, context);
}

export function probeKinds(): CheckKind[] {
  return Object.keys(factories) as CheckKind[];
}
