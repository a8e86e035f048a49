/**
 * A stand-in for podinfo (ghcr.io/stefanprodan/podinfo:6.7.1, the sample app
 * of deploy/kustomize/base and deploy/compose.yaml): a real HTTP server on
 * 127.0.0.1 that answers the health endpoints byte for byte as podinfo does.
 *
 * Where the answers come from — podinfo at tag 6.7.1 (commit 6b7aab8a10d6):
 * - pkg/api/http/health.go: `healthzHandler` / `readyzHandler` answer
 *   `s.JSONResponse(w, r, map[string]string{"status": "OK"})` while the
 *   healthy / ready flag is 1, else `w.WriteHeader(http.StatusServiceUnavailable)`
 *   (503, empty body). `enableReadyHandler` / `disableReadyHandler` set the
 *   ready flag and answer 202 (empty body).
 * - pkg/api/http/http.go: `JSONResponse` sets `Content-Type: application/json;
 *   charset=utf-8` and `X-Content-Type-Options: nosniff`, writes 200 and the
 *   body through `prettyJSON` = `json.Indent(&out, b, "", "  ")`, so the body
 *   is `{\n  "status": "OK"\n}` with no trailing newline.
 * - pkg/api/http/server.go: routes `/healthz` GET, `/readyz` GET,
 *   `/readyz/enable` POST, `/readyz/disable` POST (gorilla/mux 1.8.1: a known
 *   path with another method → 405 with an empty body; an unknown path →
 *   net/http's NotFound: 404 `404 page not found\n`, text/plain). The flags
 *   start at 1 unless `--unhealthy` / `--unready` is given.
 * - pkg/signals/shutdown.go: on SIGTERM both flags go to 0 ("all calls to
 *   /healthz and /readyz will fail from now on"), then ~3 s before the server stops.
 */
import type http from 'node:http';
import { startHttpServer, type TestHttpServer } from './servers';

export const PODINFO_VERSION = '6.7.1';
/** What podinfo writes for {"status":"OK"}: encoding/json + json.Indent(…, "", "  "). */
export const PODINFO_OK_BODY = '{\n  "status": "OK"\n}';

export interface PodinfoStandIn extends TestHttpServer {
  /** `--unhealthy` / shutdown: /healthz answers 503 */
  setHealthy(on: boolean): void;
  /** `--unready` / POST /readyz/disable / shutdown: /readyz answers 503 */
  setReady(on: boolean): void;
  /** podinfo's SIGTERM handler: both flags to 0 */
  shutdown(): void;
  /** requests seen, as "METHOD path" */
  seen(): string[];
}

export async function startPodinfo(options: { unhealthy?: boolean; unready?: boolean } = {}): Promise<PodinfoStandIn> {
  let healthy = !options.unhealthy;
  let ready = !options.unready;
  const seen: string[] = [];
  const json = (res: http.ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(PODINFO_OK_BODY);
  };
  const routes: Record<string, { method: string; handle: (res: http.ServerResponse) => void }> = {
    '/healthz': { method: 'GET', handle: (res) => (healthy ? json(res) : (res.writeHead(503), res.end())) },
    '/readyz': { method: 'GET', handle: (res) => (ready ? json(res) : (res.writeHead(503), res.end())) },
    '/readyz/enable': { method: 'POST', handle: (res) => ((ready = true), res.writeHead(202), res.end()) },
    '/readyz/disable': { method: 'POST', handle: (res) => ((ready = false), res.writeHead(202), res.end()) },
  };
  const server = await startHttpServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    seen.push(`${req.method} ${path}`);
    req.resume();
    const route = routes[path];
    if (!route) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
      res.end('404 page not found\n');
    } else if (req.method !== route.method) {
      res.writeHead(405);
      res.end();
    } else route.handle(res);
  });
  return {
    ...server,
    setHealthy: (on) => void (healthy = on),
    setReady: (on) => void (ready = on),
    shutdown: () => void ((healthy = false), (ready = false)),
    seen: () => [...seen],
  };
}
