/**
 * Mines on a devchain as fast as it can until killed, for
 * `devchain-store.test.ts`. Each step mines a block with transactions on the
 * tip; every fifth step instead mines a branch from two blocks below the tip
 * that ends one block higher, so the chain reorganises (disconnects two blocks,
 * connects four) in the middle of the run. After each step it prints
 * `height hash` of the tip: a line on stdout is a step committed. Stops by
 * itself after 30 s so that an orphan cannot write forever.
 *
 * Usage: node test/chain/_devchain-writer.ts <chain file>
 */
import { hex } from '../../src/chain/adapter.ts';
import { Devchain } from '../../src/chain/devchain/index.ts';
import { TEST_OPTIONS, TEST_PARAMS } from './_devchain.ts';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: _devchain-writer.ts <file>');
const chain = Devchain.open(file, TEST_PARAMS, TEST_OPTIONS);
const stopAt = performance.now() + 30_000;
for (let step = 0; performance.now() < stopAt; step++) {
  if (step % 5 === 4 && chain.tip().height >= 2) {
    let parent = chain.headerAt(chain.tip().height - 2)!.hash;
    for (let i = 0; i < 4; i++) parent = chain.mine({ parent, txs: chain.makeTxs(5, step * 10 + i, parent) }).header.hash;
  } else {
    chain.mine({ txs: chain.makeTxs(20, step) });
  }
  process.stdout.write(`${chain.tip().height} ${hex(chain.tip().hash)}\n`);
}
chain.close();
