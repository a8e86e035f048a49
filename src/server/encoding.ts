/**
 * Response compression (Accept-Encoding, RFC 9110 §12.5.3): gzip when the
 * client accepts it, for bodies worth compressing. Prometheus asks for gzip on
 * every scrape; browsers on every page. The kubelet probe answers never are
 * (server/probes.ts opts out; the fast path does not come here at all).
 */
import { constants, gzipSync } from 'node:zlib';

/** Bodies smaller than this go as they are: gzip's ~20 bytes of framing would eat what it saves. */
export const GZIP_MIN_BYTES = 256;

/**
 * Does an Accept-Encoding header accept gzip? `gzip` / `x-gzip` with q > 0, or
 * `*` with q > 0 when gzip is not named. A missing header accepts only identity.
 */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  const text = Array.isArray(header) ? header.join(',') : header;
  let star: boolean | undefined;
  for (const part of text.split(',')) {
    const [coding = '', ...params] = part.trim().split(';');
    const name = coding.trim().toLowerCase();
    if (name === '') continue;
    let q = 1;
    for (const param of params) {
      const [key, value] = param.split('=').map((t) => t.trim().toLowerCase());
      if (key === 'q') q = Number(value);
    }
    const accepted = Number.isFinite(q) && q > 0;
    if (name === 'gzip' || name === 'x-gzip') return accepted;
    if (name === '*') star = accepted;
  }
  return star ?? false;
}

/** `vary` with `Accept-Encoding` added once. */
export function varyWithEncoding(vary: string | number | undefined): string {
  if (vary === undefined || vary === '') return 'Accept-Encoding';
  const text = String(vary);
  return text.split(',').some((v) => v.trim().toLowerCase() === 'accept-encoding') ? text : `${text}, Accept-Encoding`;
}

/**
 * The payload as it goes on the wire, and the headers that say so. Only
 * bodies of at least GZIP_MIN_BYTES vary by encoding (and say so in Vary).
 */
export function encodeBody(payload: Buffer, acceptEncoding: string | string[] | undefined, vary: string | number | undefined, gzip: (payload: Buffer) => Buffer = gzipBody): { body: Buffer; headers: Record<string, string> } {
  if (payload.length < GZIP_MIN_BYTES) return { body: payload, headers: {} };
  const headers: Record<string, string> = { vary: varyWithEncoding(vary) };
  if (!acceptsGzip(acceptEncoding)) return { body: payload, headers };
  return { body: gzip(payload), headers: { ...headers, 'content-encoding': 'gzip' } };
}

export function gzipBody(payload: Buffer): Buffer {
  return gzipSync(payload, { level: constants.Z_DEFAULT_COMPRESSION });
}

/** A body written to many clients: gzipped at most once, on first demand. */
export class SharedBody {
  private gzipped: Buffer | undefined;
  constructor(readonly payload: Buffer) {}
  readonly gzip = (): Buffer => (this.gzipped ??= gzipBody(this.payload));
}
