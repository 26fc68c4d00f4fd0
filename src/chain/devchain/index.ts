/**
 * The devchain: pqnet's reference chain for development and tests (DESIGN.md,
 * Sync), a `ChainAdapter` on SQLite. See `devchain.ts` for how it works.
 */
export { Devchain, HEADER_CACHE_SIZE, type DevchainOptions, type MineChainOptions, type MineOptions } from './devchain.ts';
export {
  buildHeader, cborUint, decodeBlock, decodeHeader, decodeTx, encodeBlock, encodeHeader, encodeTx, merkleRoot, meetsTarget, mineHeader,
  type DevBlock, type DevHeader, type DevTx, type HeaderFields, type TxFields,
} from './encoding.ts';
export { bigintToBytes, bytesToBigint, sha3 } from './hash.ts';
export * from './params.ts';
export { applyTx, bucketHash, bucketHashesOf, decodeSnapshot, EMPTY_BUCKET_HASH, Overlay, stateRootOf, type Account } from './state.ts';
export { DevchainStore, DEVCHAIN_APPLICATION_ID, DEVCHAIN_SCHEMA_VERSION } from './store.ts';
