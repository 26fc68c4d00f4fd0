/**
 * IP addresses and CIDR ranges as bigints: parsing (strict: no leading zeros,
 * one `::` at most), canonical text (RFC 5952), and the network a host belongs
 * to. Shared by the listener's per-host handshake caps, the peer set's per-IP
 * and per-subnet caps, bans and the allow/deny filter, so they all agree on
 * what "the same address" is.
 */
import { isIP } from 'node:net';
import { PqnetError } from './errors.ts';

/**
 * An IP network: `bits` is the address with the host bits cleared; a single
 * address has the full prefix (32 or 128). IPv4-mapped IPv6 (`::ffff:0:0/96`
 * and narrower) is always held as IPv4, so `::ffff:192.0.2.1` and `192.0.2.1`
 * are the same thing everywhere.
 */
export interface Cidr {
  readonly version: 4 | 6;
  readonly bits: bigint;
  readonly prefix: number;
}

const WIDTH = { 4: 32, 6: 128 } as const;
const DECIMAL = /^(0|[1-9]\d{0,2})$/; // no leading zeros: `010` is octal to some parsers

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!DECIMAL.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseIpv6(text: string): bigint | undefined {
  // isIP checks the syntax (one `::` at most, group count, embedded IPv4) but accepts a zone.
  if (isIP(text) !== 6 || text.includes('%')) return undefined;
  const groups = (part: string): bigint[] | undefined => {
    const out: bigint[] = [];
    for (const g of part === '' ? [] : part.split(':')) {
      if (!g.includes('.')) {
        out.push(BigInt(`0x${g}`));
        continue;
      }
      const v4 = parseIpv4(g);
      if (v4 === undefined) return undefined;
      out.push(v4 >> 16n, v4 & 0xffffn);
    }
    return out;
  };
  const gap = text.indexOf('::');
  const left = groups(gap < 0 ? text : text.slice(0, gap));
  const right = gap < 0 ? [] : groups(text.slice(gap + 2));
  if (left === undefined || right === undefined) return undefined;
  const zeros = 8 - left.length - right.length; // `::` stands for one or more zero groups
  if (gap < 0 ? zeros !== 0 : zeros < 1) return undefined;
  return [...left, ...Array<bigint>(zeros).fill(0n), ...right].reduce((acc, g) => (acc << 16n) | g, 0n);
}

function maskBits(bits: bigint, version: 4 | 6, prefix: number): bigint {
  return bits & ~((1n << BigInt(WIDTH[version] - prefix)) - 1n);
}

/** IPv4-mapped IPv6 networks (prefix 96 or longer inside ::ffff:0:0/96) become IPv4. */
function unmap(c: Cidr): Cidr {
  if (c.version === 6 && c.prefix >= 96 && c.bits >> 32n === 0xffffn) {
    return { version: 4, bits: c.bits & 0xffff_ffffn, prefix: c.prefix - 96 };
  }
  return c;
}

function invalid(text: string): PqnetError {
  return new PqnetError('INVALID_ARGUMENT', `${JSON.stringify(text.slice(0, 80))} is not an IP address or CIDR range`);
}

/**
 * Parse `192.0.2.7`, `192.0.2.0/24`, `2001:db8::/32`, `::ffff:192.0.2.0/120`.
 * Host bits under the mask are cleared (`192.0.2.7/24` is `192.0.2.0/24`).
 * Throws `INVALID_ARGUMENT`.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v4 = parseIpv4(addr);
  const version = v4 !== undefined ? 4 : 6;
  const bits = v4 ?? parseIpv6(addr);
  if (bits === undefined) throw invalid(text);
  let prefix: number = WIDTH[version];
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!DECIMAL.test(p) || Number(p) > prefix) throw invalid(text);
    prefix = Number(p);
  }
  return unmap({ version, bits: maskBits(bits, version, prefix), prefix });
}

/**
 * Canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lowercase, longest
 * zero run compressed), and no `/len` for a single address.
 */
export function formatCidr(c: Cidr): string {
  let addr: string;
  if (c.version === 4) {
    addr = [24n, 16n, 8n, 0n].map((s) => String((c.bits >> s) & 0xffn)).join('.');
  } else {
    const g = Array.from({ length: 8 }, (_, i) => Number((c.bits >> BigInt(112 - 16 * i)) & 0xffffn));
    let at = -1;
    let len = 1; // RFC 5952: a single zero group is not compressed
    for (let i = 0; i < 8; ) {
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > len) [at, len] = [i, j - i];
      i = Math.max(j, i + 1);
    }
    const hex = g.map((x) => x.toString(16));
    addr = at < 0 ? hex.join(':') : `${hex.slice(0, at).join(':')}::${hex.slice(at + len).join(':')}`;
  }
  return c.prefix === WIDTH[c.version] ? addr : `${addr}/${c.prefix}`;
}

/** Canonical form of an IP or CIDR (`192.0.2.7/24` → `192.0.2.0/24`); throws `INVALID_ARGUMENT`. */
export function normalizeCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

/**
 * A remote host as a full-length network, or `undefined` if it is not an IP
 * (memory-transport names). A zone (`fe80::1%eth0`) is ignored.
 */
export function hostCidr(host: string): Cidr | undefined {
  const bare = host.includes('%') ? host.slice(0, host.indexOf('%')) : host;
  if (bare.includes('/')) return undefined;
  try {
    return parseCidr(bare);
  } catch {
    return undefined;
  }
}

/** The network of `c` at `prefix` bits (host bits cleared). */
export function networkOf(c: Cidr, prefix: number): Cidr {
  return { version: c.version, bits: maskBits(c.bits, c.version, prefix), prefix };
}

const LOOPBACK_V4 = parseCidr('127.0.0.0/8');

/** `localhost`, 127.0.0.0/8 (also IPv4-mapped) or ::1: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const ip = hostCidr(host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);
  if (ip === undefined) return false;
  if (ip.version === 6) return ip.bits === 1n;
  return networkOf(ip, 8).bits === LOOPBACK_V4.bits;
}
