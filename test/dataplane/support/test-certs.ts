import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Runs the openssl CLI in `dir`; throws with its stderr when it fails. */
export function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
}

/** A self-signed RSA test CA valid for 2 days: NAME.key and NAME.crt in `dir`. */
export function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-subj',
    `/CN=${name}`,
  ]);
}

/**
 * The openssl extensions of a Redis node certificate for `subjectAltName` (e.g.
 * `DNS:localhost,IP:127.0.0.1`): server and client use, since nodes connect to one another on
 * the cluster bus and for replication.
 */
export const redisNodeCertExt = (subjectAltName: string): string =>
  `subjectAltName=${subjectAltName}\nextendedKeyUsage=serverAuth,clientAuth\n`;

/**
 * An RSA certificate signed by CA_NAME, valid for 2 days: NAME.key and NAME.crt in `dir`, with
 * the openssl extensions in `ext` (subjectAltName, extendedKeyUsage) and subject CN `cn`.
 */
export function signCert(dir: string, name: string, caName: string, ext: string, cn = name): void {
  openssl(dir, [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${caName}.crt`,
    '-CAkey',
    `${caName}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    `${name}.crt`,
    '-extfile',
    `${name}.ext`,
  ]);
}
