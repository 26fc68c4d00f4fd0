/**
 * The long-running node process (`pqnet listen`): from a validated
 * configuration, prepare the data directory, load or generate the identity,
 * build and start the `Node`, and log what happens to its peers.
 */
import { mkdir } from 'node:fs/promises';
import { isPqnetError, PqnetError } from '../core/errors.ts';
import { generateIdentity, type Identity } from '../secure/identity.ts';
import { loadIdentity, saveIdentity } from '../secure/keyfile.ts';
import type { ResolvedConfig } from './config.ts';
import type { Logger } from './log.ts';
import { Node } from './node.ts';

export interface NodeService {
  readonly node: Node;
  readonly config: ResolvedConfig;
  /** Graceful: peers get GOODBYE SHUTDOWN, the store is closed. */
  stop(): Promise<void>;
}

/** Load the key at `file`, or generate one of `alg` there if the file does not exist. */
export async function loadOrCreateIdentity(file: string, alg: ResolvedConfig['identityAlg'], log?: Logger): Promise<{ identity: Identity; created: boolean }> {
  try {
    return { identity: await loadIdentity(file), created: false };
  } catch (e) {
    if (!isPqnetError(e) || e.code !== 'KEY_FILE_MISSING') throw e;
  }
  const identity = generateIdentity(alg);
  try {
    await saveIdentity(file, identity);
  } catch (e) {
    // Another process created it meanwhile: use that one.
    if (isPqnetError(e) && e.code === 'KEY_FILE_EXISTS') return { identity: await loadIdentity(file), created: false };
    throw e;
  }
  log?.info({ file, alg, peerId: identity.peerId.toString() }, 'generated a new node key');
  return { identity, created: true };
}

export async function startNodeService(config: ResolvedConfig, log: Logger): Promise<NodeService> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const { identity } = await loadOrCreateIdentity(config.keyPath, config.identityAlg, log);
  const node = new Node({
    identity,
    chainId: config.chainId,
    storePath: config.dbPath,
    listen: config.listen,
    ...(config.announce.length > 0 ? { announce: config.announce } : {}),
    mustConnect: config.peers.mustConnect,
    bootstrap: config.seeds,
    allow: config.peers.allow,
    deny: config.peers.deny,
    agent: config.agent,
    policy: config.policy,
    limits: config.limits,
    rateLimits: config.rateLimits,
    peerSet: { maxPeers: config.peers.maxPeers, maxOutbound: config.peers.maxOutbound, maxPeersPerIp: config.peers.maxPeersPerIp, maxPeersPerSubnet: config.peers.maxPeersPerSubnet },
  });
  node.on('peer:active', (p) => log.info({ peerId: p.peerId, direction: p.direction, address: p.address, agent: p.agent, rttMs: p.rttMs }, 'peer active'));
  node.on('peer:closed', (p, reason) =>
    log.info({ peerId: p.peerId, direction: p.direction, address: p.address, reason: reason.code, remoteReason: reason.details?.['remoteReason'], connectedMs: Math.round(p.connectedForMs) }, 'peer closed'),
  );
  node.on('peer:offense', (p, reason, detail) => log.debug({ peerId: p.peerId, reason, detail }, 'peer offense'));
  node.on('banned', (b) => log.warn({ kind: b.kind, target: b.target, reason: b.reason, expiresAt: new Date(b.expiresAt).toISOString() }, 'ban'));
  try {
    await node.start();
  } catch (e) {
    throw isPqnetError(e) ? e : new PqnetError('LISTEN_FAILED', (e as Error).message, { cause: e });
  }
  log.info({ peerId: node.peerId, listen: node.listenAddresses, chainId: config.chainId, dataDir: config.dataDir, kem: config.policy.kem, sig: identity.alg }, 'node started');
  return {
    node,
    config,
    async stop() {
      await node.stop();
      log.info({ peerId: node.peerId }, 'node stopped');
    },
  };
}
