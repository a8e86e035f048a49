/**
 * The sidecar's own grpc.health.v1 server (on `server.grpcPort`), so that
 * Kubernetes' native gRPC probes (`grpc: { port, service }`) can be pointed at
 * the sidecar. Service names map to the groups:
 *
 *   "live" → live   "ready" → ready   "startup" → startup   "" → ready
 *
 * UP and DEGRADED are SERVING; DOWN and UNKNOWN are NOT_SERVING (the same
 * rule as /livez, /readyz, /startupz). Any other name is NOT_FOUND for Check
 * and SERVICE_UNKNOWN for Watch, as the protocol says. Served from memory like
 * the HTTP probes: every HealthStore change (and refresh(), for lifecycle
 * changes such as draining) recomputes the three groups and pushes the ones
 * that changed to Watch streams.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { GroupName } from '../config/schema';
import { isServing } from '../health/aggregate';
import type { HealthSnapshot, HealthSnapshots } from '../health/snapshot';
import type { HealthStore } from '../health/state';

/** gRPC service name → group */
export const GRPC_HEALTH_SERVICES: Readonly<Record<string, GroupName>> = { live: 'live', ready: 'ready', startup: 'startup', '': 'ready' };

export interface GrpcHealthOptions {
  host: string;
  port: number;
  store: HealthStore;
  health: HealthSnapshots;
}

/** Pure: the serving status of each gRPC service name from the current check states. */
export function servingStatuses(snapshot: HealthSnapshot): Record<string, ServingStatus> {
  const out: Record<string, ServingStatus> = {};
  for (const [service, group] of Object.entries(GRPC_HEALTH_SERVICES)) out[service] = isServing(snapshot.groups[group].status) ? 'SERVING' : 'NOT_SERVING';
  return out;
}

export class GrpcHealthServer {
  private current: Record<string, ServingStatus>;
  private readonly unsubscribe: () => void;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: grpc.Server,
    private readonly health: HealthImplementation,
    readonly port: number,
    private readonly options: GrpcHealthOptions,
    initial: Record<string, ServingStatus>,
  ) {
    this.current = initial;
    this.unsubscribe = options.store.onChange(() => this.refresh());
  }

  static async start(options: GrpcHealthOptions): Promise<GrpcHealthServer> {
    const initial = servingStatuses(options.health.current());
    const health = new HealthImplementation(initial);
    const server = new grpc.Server({ 'grpc.max_concurrent_streams': 100 });
    health.addToServer(server);
    const host = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    return new GrpcHealthServer(server, health, port, options, initial);
  }

  /** Recompute the statuses; Watch streams hear about the ones that changed. */
  refresh(): void {
    if (this.closing) return;
    const next = servingStatuses(this.options.health.current());
    for (const [service, status] of Object.entries(next)) {
      if (this.current[service] !== status) this.health.setStatus(service, status);
    }
    this.current = next;
  }

  /** Stop at once: open Watch streams are cancelled (they never end on their own). */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.unsubscribe();
      this.server.forceShutdown();
      resolve();
    });
    return this.closing;
  }
}
