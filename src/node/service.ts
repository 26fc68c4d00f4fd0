/**
 * The long-running node process (`pqnet listen`): from a validated
 * configuration, prepare the data directory, load or generate the identity,
 * build and start the `Node` (with chain sync and gossip unless turned off),
 * and log what happens to its peers.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isPqnetError, PqnetError } from '../core/errors.ts';
import { generateIdentity, type Identity } from '../secure/identity.ts';
import { loadIdentity, saveIdentity } from '../secure/keyfile.ts';
import type { ResolvedConfig } from './config.ts';
import type { Logger } from './log.ts';
import { ApiServer } from '../rpc/server.ts';
import { createNodeMetrics, type NodeMetrics } from './metrics.ts';
import { Node } from './node.ts';
import { sameHash } from '../chain/adapter.ts';
import { Devchain } from '../chain/devchain/index.ts';
import { SystemClock } from '../core/clock.ts';
import { SYNC_PROTOCOL } from '../sync/messages.ts';
import type { ChainApi } from '../rpc/server.ts';
import { ChainSync } from './chain-sync.ts';
import { DevProducer } from './producer.ts';
import { Relay } from './relay.ts';
import { StateSyncService } from './state-sync.ts';
import { addRelayMetrics, addSyncMetrics } from './sync-metrics.ts';
import { GOSSIP_PROTOCOL } from '../gossip/messages.ts';
import { gossipApi } from '../rpc/gossip.ts';
import { BLOCKS_TOPIC, ChainGossip, TXS_TOPIC } from './chain-gossip.ts';
import { Gossip } from './gossip.ts';
import { addGossipMetrics } from './gossip-metrics.ts';

export interface NodeService {
  readonly node: Node;
  readonly config: ResolvedConfig;
  readonly metrics: NodeMetrics;
  /** The chain and its sync, unless `sync.enabled` is false. */
  readonly chain: Devchain | undefined;
  readonly sync: ChainSync | undefined;
  readonly relay: Relay | undefined;
  /** Gossip, unless `gossip.enabled` is false; the configured topics are joined. */
  readonly gossip: Gossip | undefined;
  /** Blocks and transactions through the `blocks` and `txs` topics, when both sync and gossip are on and `gossip.chain` is true. */
  readonly chainGossip: ChainGossip | undefined;
  /** The HTTP API, unless `api.enabled` is false. */
  readonly api: ApiServer | undefined;
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

/** Characters of a generated API token: 32 random bytes, base64url. */
const TOKEN_BYTES = 32;

/**
 * The API token in `file`, or a new random one written there (mode 0600,
 * exclusively). A token file others can read is refused, as a key file is.
 */
export async function loadOrCreateApiToken(file: string, log?: Logger): Promise<string> {
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  try {
    const fh = await open(file, 'wx', 0o600);
    try {
      await fh.writeFile(`${token}\n`);
    } finally {
      await fh.close();
    }
    log?.info({ file }, 'generated an API token');
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new PqnetError('CONFIG_INVALID', `cannot write the API token file ${file}: ${(e as Error).message}`, { cause: e });
  }
  const st = await stat(file);
  if ((st.mode & 0o077) !== 0) throw new PqnetError('CONFIG_INVALID', `API token file ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  const existing = (await readFile(file, 'utf8')).trim();
  if (existing.length < 16 || existing.length > 256 || /\s/.test(existing)) throw new PqnetError('CONFIG_INVALID', `API token file ${file}: expected one token of 16 to 256 characters without spaces`);
  return existing;
}

/** Where a running node says which address its API is bound to (for `pqnet peer ...` with a port picked at start). */
export function apiAddressFile(dataDir: string): string {
  return path.join(dataDir, 'api.addr');
}

export async function startNodeService(config: ResolvedConfig, log: Logger): Promise<NodeService> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const { identity } = await loadOrCreateIdentity(config.keyPath, config.identityAlg, log);
  const clock = new SystemClock();
  const chain = config.sync.enabled ? Devchain.open(config.sync.chainPath, { chainId: config.chainId, genesisAccounts: config.devchain.genesisAccounts }) : undefined;
  try {
    return await startWith(config, log, identity, clock, chain);
  } catch (e) {
    chain?.close();
    throw e;
  }
}

/** The node, with its peer events logged. */
function createNode(config: ResolvedConfig, log: Logger, identity: Identity, clock: SystemClock, chain: Devchain | undefined): Node {
  const protocols = [...(chain === undefined ? [] : [SYNC_PROTOCOL]), ...(config.gossip.enabled ? [GOSSIP_PROTOCOL] : [])];
  const node = new Node({
    identity,
    clock,
    ...(protocols.length === 0 ? {} : { protocols }),
    ...(chain === undefined ? {} : { height: () => chain.tip().height }),
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
  return node;
}

interface ChainParts {
  readonly sync: ChainSync;
  readonly stateSync: StateSyncService;
  readonly relay: Relay;
  /** State mode on a chain that has no block yet: a snapshot first, blocks above it afterwards. */
  readonly wantState: boolean;
}

/** Sync, state sync and relay on `chain`, wired to each other and logged (not started). */
function createChainParts(config: ResolvedConfig, log: Logger, node: Node, clock: SystemClock, chain: Devchain): ChainParts {
  const wantState = config.sync.mode === 'state' && chain.tip().height === 0;
  const sync = new ChainSync(node, chain, clock, { blocks: config.sync.blocks, progressPath: config.sync.progressPath, blocksPaused: wantState });
  // Every syncing node serves snapshots; only a state-mode node fetches one.
  const stateSync = new StateSyncService(node, chain, clock, { storePath: config.sync.statePath });
  // Relay follows the chain (mempool upkeep, announcements); an announcement it cannot place sends headers-first sync to that peer.
  const relay = new Relay(node, chain, clock, { onBlockAnnounced: (peer, height) => sync.onPeerHeight(peer, height ?? chain.bestHeader().height + 1) });
  sync.on('state', (p) => log.info({ state: p.state, tipHeight: p.tipHeight, bestHeaderHeight: p.bestHeaderHeight, targetHeight: p.targetHeight, peers: p.peers }, 'sync state'));
  sync.on('fault', (e) => log.error({ err: e }, 'sync stopped: the chain failed'));
  // Downloaded blocks are announced only once synced, and only the one that became the tip (a slice of
  // imports may end there); never to the peer that served it. While catching up they are old news.
  sync.on('imported', (r, from, hash) => {
    relay.markBlockKnown(from, hash);
    const last = r.connected.at(-1);
    relay.onChainChanged(r, last !== undefined && sync.synced && sameHash(last, sync.chain.tip().hash));
  });
  stateSync.on('selected', (m, resumed) => log.info({ height: m.height, chunks: m.chunkHashes.length, bytes: m.totalBytes, resumed }, 'state sync: snapshot chosen'));
  stateSync.on('discarded', (m, why) => log.warn({ height: m.height, why }, 'state sync: snapshot discarded'));
  stateSync.on('applied', (m) => {
    log.info({ height: m.height, bytes: m.totalBytes }, 'state sync: snapshot applied; fetching the blocks above it');
    sync.setBlocksPaused(false);
  });
  stateSync.on('failed', (e) => {
    log.error({ err: e }, 'state sync stopped; falling back to block sync from the tip');
    sync.setBlocksPaused(false);
  });
  relay.on('fault', (e) => log.error({ err: e }, 'relay: local failure'));
  return { sync, stateSync, relay, wantState };
}

/**
 * Gossip (before `node.start()`: it registers its message types) with the
 * configured topics defined and joined, and the chain bridge when sync runs
 * and `gossip.chain` is on. Without the bridge nothing validates the chain
 * topics: joined, the node would forward anything on them (and be penalised
 * by the peers that validate), so the default list's are left out; listed by
 * the operator, they are joined.
 */
function createGossip(config: ResolvedConfig, log: Logger, node: Node, clock: SystemClock, chain: Devchain | undefined, parts: ChainParts | undefined): { gossip: Gossip; chainGossip: ChainGossip | undefined } {
  const gossip = new Gossip(node, clock, { params: config.gossip.params });
  for (const [name, spec] of Object.entries(config.gossip.define)) gossip.define(name, spec);
  gossip.on('fault', (e) => log.error({ err: e }, 'gossip: local failure'));
  const chainGossip = config.gossip.chain && chain !== undefined && parts !== undefined ? new ChainGossip(gossip, { chain, relay: parts.relay, sync: parts.sync, clock, log }) : undefined;
  try {
    const unbridged = chainGossip === undefined ? config.gossip.topics.filter((t) => t === TXS_TOPIC || t === BLOCKS_TOPIC) : [];
    const left: string[] = config.gossip.topicsSet ? [] : unbridged;
    for (const topic of config.gossip.topics) if (!left.includes(topic)) gossip.subscribe(topic);
    const p = gossip.router.params;
    const joined = gossip.router.topics.names().filter((t) => gossip.router.subscribed(t));
    log.info({ topics: joined, flood: p.flood, D: p.D, Dlo: p.Dlo, Dhi: p.Dhi, Dunchoked: p.Dunchoked, heartbeatMs: p.heartbeatMs }, 'gossip: subscribed');
    if (left.length > 0) log.warn({ topics: left }, 'gossip: not joining the chain topics without the chain bridge (sync off or gossip.chain false)');
    else if (unbridged.length > 0) log.warn({ topics: unbridged }, 'gossip: chain topics joined without the chain bridge: items on them are not validated unless the application sets a validator');
  } catch (e) {
    chainGossip?.stop();
    gossip.stop();
    throw e;
  }
  return { gossip, chainGossip };
}

async function startWith(config: ResolvedConfig, log: Logger, identity: Identity, clock: SystemClock, chain: Devchain | undefined): Promise<NodeService> {
  const node = createNode(config, log, identity, clock, chain);
  const parts = chain === undefined ? undefined : createChainParts(config, log, node, clock, chain);
  const { sync, stateSync, relay } = parts ?? {};
  let gossip: Gossip | undefined;
  let chainGossip: ChainGossip | undefined;
  // The engines, stopped (before the node) when start fails and on shutdown.
  const stopEngines = (): void => {
    sync?.stop();
    relay?.stop();
    stateSync?.stop();
    chainGossip?.stop();
    gossip?.stop();
  };
  try {
    if (config.gossip.enabled) ({ gossip, chainGossip } = createGossip(config, log, node, clock, chain, parts));
    await node.start();
  } catch (e) {
    stopEngines();
    throw isPqnetError(e) ? e : new PqnetError('LISTEN_FAILED', (e as Error).message, { cause: e });
  }
  sync?.start();
  if (parts?.wantState === true) stateSync?.start();
  const metrics = createNodeMetrics(node);
  const syncMetrics = sync === undefined ? undefined : addSyncMetrics(sync, metrics.registry);
  if (relay !== undefined) addRelayMetrics(relay, metrics.registry);
  const gossipMetrics = gossip === undefined ? undefined : addGossipMetrics(gossip, metrics.registry);
  const closeMetrics = (): void => {
    syncMetrics?.close();
    gossipMetrics?.close();
    metrics.close();
  };
  const producer =
    chain === undefined || relay === undefined
      ? undefined
      : new DevProducer(chain, {
          pendingTxs: () => [...relay.mempool.txs()].slice(0, chain.params.maxTxsPerBlock).map((t) => t.bytes),
          mined: (r) => relay.onChainChanged(r),
          submitTx: (bytes) => void relay.submitTx(bytes),
        });
  const chainApi: ChainApi | undefined =
    chain === undefined || sync === undefined || producer === undefined
      ? undefined
      : {
          name: chain.name,
          progress: () => sync.progress(),
          status: () => ({
            headers: { ...sync.headers.stats() },
            blocks: { ...sync.blocks.stats() },
            ...(relay === undefined ? {} : { relay: relay.stats() }),
            ...(stateSync === undefined ? {} : { state: stateSync.stats() }),
            ...(chainGossip === undefined ? {} : { gossip: chainGossip.stats() }),
          }),
          publish: (r) => (r.kind === 'blocks' ? producer.blocks(r.count, r.txsPerBlock) : producer.txs(r.count)),
        };
  let api: ApiServer | undefined;
  const addrFile = apiAddressFile(config.dataDir);
  if (config.api.enabled) {
    const g = gossip;
    try {
      const token = config.api.token ?? (await loadOrCreateApiToken(config.tokenPath, log));
      api = await ApiServer.start({
        node,
        ...(chainApi === undefined ? {} : { chain: chainApi }),
        ...(g === undefined ? {} : { gossip: gossipApi({ gossip: g, node, validator: (topic) => g.validator(topic) }) }),
        metrics: metrics.registry,
        host: config.api.host,
        port: config.api.port,
        token,
        maxBodyBytes: config.api.maxBodyBytes,
        log,
      });
      await writeFile(addrFile, `${api.address}\n`, { mode: 0o644 });
      await chmod(addrFile, 0o644);
    } catch (e) {
      await api?.close();
      closeMetrics();
      stopEngines();
      await node.stop();
      if (isPqnetError(e)) throw e;
      throw new PqnetError('LISTEN_FAILED', `API on ${config.api.host}:${config.api.port}: ${(e as Error).message}`, { cause: e });
    }
    log.info({ api: api.url }, 'api listening');
  }
  log.info({ peerId: node.peerId, listen: node.listenAddresses, chainId: config.chainId, dataDir: config.dataDir, kem: config.policy.kem, sig: identity.alg, api: api?.url }, 'node started');
  return {
    node,
    config,
    metrics,
    chain,
    sync,
    relay,
    gossip,
    chainGossip,
    api,
    async stop() {
      // The API stops accepting first, but requests under way (a connect waiting on its handshake)
      // are answered by the node's shutdown (503 SHUTDOWN) before the server finishes closing.
      const closing = api?.close();
      stopEngines();
      await node.stop();
      chain?.close();
      if (api !== undefined) {
        await closing;
        // Only if it is still ours (another node on this data directory may have taken over).
        const written = await readFile(addrFile, 'utf8').catch(() => '');
        if (written.trim() === api.address) await rm(addrFile, { force: true });
      }
      closeMetrics();
      log.info({ peerId: node.peerId }, 'node stopped');
    },
  };
}
