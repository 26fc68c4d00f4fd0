/** Transport addresses: scheme://host:port (IPv6 hosts in brackets) or mem://name. */
import { isIP } from 'node:net';
import { PqnetError } from '../core/errors.ts';
import { formatCidr, hostCidr, networkOf } from '../core/ip.ts';

export interface HostPort {
  readonly scheme: string;
  readonly host: string;
  readonly port: number;
}

const HOST_PORT = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-fA-F:.]+\]|[^\s/:[\]]+):(\d{1,5})$/;

export function parseHostPort(address: string, scheme?: string): HostPort {
  const m = HOST_PORT.exec(address);
  if (m === null) throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(address)}: expected scheme://host:port`);
  const [, s, rawHost, rawPort] = m as unknown as [string, string, string, string];
  if (scheme !== undefined && s !== scheme) throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(address)}: expected ${scheme}://`);
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  if (rawHost.startsWith('[') && isIP(host) !== 6) throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(address)}: bad IPv6 address`);
  const port = Number(rawPort);
  if (port > 65_535) throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(address)}: port out of range`);
  return { scheme: s, host, port };
}

export function formatHostPort(scheme: string, host: string, port: number): string {
  return `${scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

export function schemeOf(address: string): string {
  const i = address.indexOf('://');
  if (i <= 0) throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(address)}: no scheme`);
  return address.slice(0, i);
}

/**
 * The key under which per-address limits count a remote host: an IPv4 address
 * as it is (IPv4-mapped IPv6 unwrapped), an IPv6 address by its /64 (one
 * subscriber usually holds a whole /64), anything else (memory transport names)
 * as it is.
 */
export function hostGroupKey(host: string): string {
  const ip = hostCidr(host);
  if (ip === undefined) return host;
  return formatCidr(ip.version === 4 ? ip : networkOf(ip, 64));
}
