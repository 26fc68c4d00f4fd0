/** Test helpers: Nodes on loopback TCP with temporary stores, always cleaned up. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Node, type NodeConfig } from '../../src/node/node.ts';
import { testIdentity } from '../secure/_drive.ts';

export const CHAIN = 7;

export interface TestNodes {
  make(name: string, overrides?: Partial<NodeConfig>): Node;
  /** A store path in the temporary directory (for restarts). */
  storePath(name: string): string;
  cleanup(): Promise<void>;
}

export function testNodes(): TestNodes {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-node-'));
  const nodes: Node[] = [];
  return {
    storePath: (name) => path.join(dir, `${name}.sqlite`),
    make(name, overrides = {}) {
      const node = new Node({
        identity: testIdentity(name, 'ml-dsa-65'),
        chainId: CHAIN,
        storePath: path.join(dir, `${name}.sqlite`),
        listen: ['tcp://127.0.0.1:0'],
        agent: `test/${name}`,
        maintenanceIntervalMs: 50,
        ...overrides,
      });
      nodes.push(node);
      return node;
    },
    async cleanup() {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export { until } from '../mux/_pair.ts';
