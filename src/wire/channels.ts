/**
 * Channels (DESIGN.md, Frames and channels). The id is the frame header's
 * channel byte; priority orders chunks when several channels have data
 * (lower number goes first).
 */
export const Channel = {
  CONTROL: 0,
  CONSENSUS: 1,
  BLOCKS: 2,
  TRANSACTIONS: 3,
  GOSSIP: 4,
  REQUESTS: 5,
  BULK: 6,
} as const;

export type ChannelId = (typeof Channel)[keyof typeof Channel];

export const CHANNEL_NAMES: Readonly<Record<ChannelId, string>> = {
  0: 'control',
  1: 'consensus',
  2: 'blocks',
  3: 'transactions',
  4: 'gossip',
  5: 'requests',
  6: 'bulk',
};

export const CHANNEL_PRIORITY: Readonly<Record<ChannelId, number>> = {
  0: 0,
  1: 1,
  2: 3,
  3: 4,
  4: 2,
  5: 3,
  6: 5,
};

export function isChannelId(n: number): n is ChannelId {
  return Number.isInteger(n) && n >= 0 && n <= 6;
}
