/**
 * Test certificates made on the spot with the openssl binary (no files from the
 * network): a CA and server certificates it signs, each with a chosen lifetime
 * in days, so tests can present a certificate that expires in 1 day, 90 days…,
 * and client certificates for mutual TLS.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const OPENSSL = '/usr/bin/openssl';

export interface Pem {
  cert: string;
  key: string;
  /** notAfter of `cert`, ms since the epoch (read back from the certificate) */
  notAfter: number;
  subject: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function notAfterOf(cert: string): number {
  return Date.parse(new X509Certificate(cert).validTo);
}

async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'test-certs-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A self-signed CA valid for `days` days from now. */
export function makeCa(days: number, cn = 'Test CA'): Promise<Pem> {
  return inTempDir(async (dir) => {
    await run(OPENSSL, [
      'req', '-x509', ...EC, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', String(days),
      '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const cert = readFileSync(join(dir, 'ca.pem'), 'utf8');
    return { cert, key: readFileSync(join(dir, 'ca.key'), 'utf8'), notAfter: notAfterOf(cert), subject: `CN=${cn}` };
  });
}

/**
 * A server certificate signed by `ca`, valid for `days` days from now, for
 * localhost / 127.0.0.1 unless other subject alternative names are given
 * (e.g. `DNS:db.example.test` for a certificate that does not match the address).
 */
export function makeServerCert(ca: Pem, days: number, cn = 'localhost', altNames = 'DNS:localhost,IP:127.0.0.1'): Promise<Pem> {
  return makeLeaf(ca, days, cn, `subjectAltName=${altNames}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
}

/**
 * A client certificate signed by `ca` (extendedKeyUsage clientAuth), for mutual
 * TLS. PostgreSQL's `cert` authentication maps its CN to the database user.
 */
export function makeClientCert(ca: Pem, days: number, cn = 'health-sidecar'): Promise<Pem> {
  return makeLeaf(ca, days, cn, 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
}

function makeLeaf(ca: Pem, days: number, cn: string, extensions: string): Promise<Pem> {
  return inTempDir(async (dir) => {
    writeFileSync(join(dir, 'ca.pem'), ca.cert);
    writeFileSync(join(dir, 'ca.key'), ca.key, { mode: 0o600 });
    writeFileSync(join(dir, 'ext.cnf'), extensions);
    await run(OPENSSL, ['req', '-new', ...EC, '-keyout', join(dir, 'leaf.key'), '-out', join(dir, 'leaf.csr'), '-subj', `/CN=${cn}`]);
    await run(OPENSSL, [
      'x509', '-req', '-in', join(dir, 'leaf.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'),
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', String(days), '-extfile', join(dir, 'ext.cnf'), '-out', join(dir, 'leaf.pem'),
    ]);
    const cert = readFileSync(join(dir, 'leaf.pem'), 'utf8');
    return { cert, key: readFileSync(join(dir, 'leaf.key'), 'utf8'), notAfter: notAfterOf(cert), subject: `CN=${cn}` };
  });
}

export const DAY_MS = 86_400_000;
