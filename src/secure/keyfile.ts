/**
 * Identity key files. JSON, one object:
 *   {"type":"pqnet-identity","version":1,"alg":"ml-dsa-65","privateKey":"<base64>","peerId":"pq1…"}
 * `privateKey` is the seed form (32 B for ML-DSA-65 and Ed25519; the 64-byte
 * FIPS 205 private key for SLH-DSA). `peerId` is redundant and checked on load,
 * so a damaged key is caught before it is used. Files are created with mode
 * 0600 through a temporary file and a rename, and refused on load when other
 * users can read them.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { slh_dsa_shake_128s } from '@noble/post-quantum/slh-dsa.js';
import { equalBytes } from '../core/bytes.ts';
import { PqnetError } from '../core/errors.ts';
import { SIG_ALGS, SIG_SIZES, type SigAlg } from './algorithms.ts';
import { identityFromPrivateKey, type Identity } from './identity.ts';
import type { CryptoProvider } from './provider.ts';
import { getProvider } from './providers.ts';

export const KEY_FILE_TYPE = 'pqnet-identity';
export const KEY_FILE_VERSION = 1;
/** Larger files are not read: a key file is a few hundred bytes. */
export const MAX_KEY_FILE_BYTES = 16_384;

export interface SaveOptions {
  /** Replace an existing file (default: refuse with KEY_FILE_EXISTS). */
  readonly overwrite?: boolean;
}

export async function saveIdentity(file: string, id: Identity, options: SaveOptions = {}): Promise<void> {
  const body = JSON.stringify({
    type: KEY_FILE_TYPE,
    version: KEY_FILE_VERSION,
    alg: id.alg,
    privateKey: Buffer.from(id.privateKey).toString('base64'),
    peerId: id.peerId.toString(),
  });
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // 'wx' is O_CREAT|O_EXCL: never follows a planted symlink, never reuses a file.
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(body + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.overwrite === true) {
      await fs.rename(tmp, file);
    } else {
      // link() fails if `file` exists: no window between the check and the write.
      try {
        await fs.link(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new PqnetError('KEY_FILE_EXISTS', file);
        throw e;
      }
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

export interface LoadOptions {
  /** Fail with KEY_FILE_WRONG_ALG unless the file holds this algorithm. */
  readonly expectAlg?: SigAlg;
  readonly provider?: CryptoProvider;
}

export async function loadIdentity(file: string, options: LoadOptions = {}): Promise<Identity> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PqnetError('KEY_FILE_MISSING', file);
    throw new PqnetError('KEY_FILE_CORRUPT', `${file}: ${(e as Error).message}`, { cause: e });
  }
  if (!stat.isFile()) throw new PqnetError('KEY_FILE_CORRUPT', `${file} is not a regular file`);
  if ((stat.mode & 0o077) !== 0) {
    throw new PqnetError('KEY_FILE_INSECURE', `${file} has mode ${(stat.mode & 0o777).toString(8)}; run chmod 600 on it`);
  }
  if (stat.size > MAX_KEY_FILE_BYTES) throw new PqnetError('KEY_FILE_CORRUPT', `${file} is ${stat.size} bytes, too large for a key file`);
  return parseIdentityFile(await fs.readFile(file, 'utf8'), file, options);
}

export function parseIdentityFile(text: string, file: string, options: LoadOptions = {}): Identity {
  const corrupt = (why: string): PqnetError => new PqnetError('KEY_FILE_CORRUPT', `${file}: ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw corrupt('not a JSON object');
  const o = doc as Record<string, unknown>;
  if (o.type !== KEY_FILE_TYPE) throw corrupt(`"type" must be ${JSON.stringify(KEY_FILE_TYPE)}`);
  if (o.version !== KEY_FILE_VERSION) throw corrupt(`unsupported "version" ${JSON.stringify(o.version)}`);
  if (typeof o.alg !== 'string' || !(SIG_ALGS as string[]).includes(o.alg)) throw corrupt(`unknown "alg" ${JSON.stringify(o.alg)}`);
  const alg = o.alg as SigAlg;
  if (options.expectAlg !== undefined && alg !== options.expectAlg) {
    throw new PqnetError('KEY_FILE_WRONG_ALG', `${file} holds a ${alg} key, expected ${options.expectAlg}`);
  }
  if (typeof o.privateKey !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.privateKey)) throw corrupt('"privateKey" is not base64');
  const priv = new Uint8Array(Buffer.from(o.privateKey, 'base64'));
  if (priv.length !== SIG_SIZES[alg].privateKey) throw corrupt(`"privateKey" is ${priv.length} bytes, ${alg} needs ${SIG_SIZES[alg].privateKey}`);
  // An SLH-DSA private key embeds its public root; recompute it so a damaged
  // file can't yield an identity whose signatures never verify.
  if (alg === 'slh-dsa-shake-128s' && !equalBytes(slh_dsa_shake_128s.keygen(priv.subarray(0, 48)).secretKey, priv)) {
    throw corrupt('SLH-DSA private key is inconsistent with its public root');
  }
  let id: Identity;
  try {
    id = identityFromPrivateKey(alg, priv, options.provider ?? getProvider());
  } catch (e) {
    throw new PqnetError('KEY_FILE_CORRUPT', `${file}: key rejected by ${alg}`, { cause: e });
  }
  if (typeof o.peerId !== 'string' || o.peerId !== id.peerId.toString()) throw corrupt('"peerId" does not match the key');
  return id;
}
