/**
 * Benchmark dispatcher: `node bench/run.ts handshake|channel|frames|mux|conn-memory|api|devchain|compact|state-sync|sync|gossip|gossip-tcp|all [--quick] [--only=<impl>]`
 * (or `npm run bench -- <name> [--quick]`). Figures are JSON lines on stdout,
 * progress on stderr.
 */
import type { BenchOptions } from './_util.ts';

const BENCHES: Record<string, () => Promise<{ main: (o: BenchOptions) => Promise<void> }>> = {
  handshake: () => import('./handshake.ts'),
  channel: () => import('./channel.ts'),
  frames: () => import('./frames.ts'),
  mux: () => import('./mux.ts'),
  'conn-memory': () => import('./conn-memory.ts'),
  api: () => import('./api.ts'),
  devchain: () => import('./devchain.ts'),
  compact: () => import('./compact.ts'),
  'state-sync': () => import('./state-sync.ts'),
  sync: () => import('./sync.ts'),
  gossip: () => import('./gossip.ts'),
  'gossip-tcp': () => import('./gossip-tcp.ts'),
};

const args = process.argv.slice(2);
const unknownFlag = args.find((a) => a.startsWith('-') && a !== '--quick' && !a.startsWith('--only='));
const names = args.filter((a) => !a.startsWith('-'));
const name = names[0];
const usage = `usage: node bench/run.ts ${Object.keys(BENCHES).join('|')}|all [--quick] [--only=<impl substring>]`;

if (unknownFlag !== undefined || names.length !== 1 || (name !== 'all' && !(name! in BENCHES))) {
  console.error(unknownFlag !== undefined ? `unknown option ${unknownFlag}; ${usage}` : names.length === 1 ? `unknown benchmark "${name}"; ${usage}` : usage);
  process.exit(2);
}

const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const opts: BenchOptions = { quick: args.includes('--quick'), ...(only ? { only } : {}) };
const selected = name === 'all' ? Object.keys(BENCHES) : [name!];
const started = performance.now();
for (const n of selected) {
  const { main } = await BENCHES[n]!();
  await main(opts);
}
process.stderr.write(`[bench] done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
// Libraries may leave handles (timers, sockets in TIME_WAIT bookkeeping) behind.
process.exit(0);
