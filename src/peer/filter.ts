/**
 * Operator allow and deny lists of IPs and CIDR ranges. Deny wins; a non-empty
 * allow list refuses every host it does not contain, including hosts that are
 * not IPs (memory-transport names). Loopback and private ranges get no special
 * treatment. IPv4-mapped IPv6 hosts match IPv4 entries.
 */
import { CidrSet, formatCidr, parseCidr } from './bans.ts';

export interface AddressFilterOptions {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

export type FilterResult =
  | { readonly ok: true }
  /** `rule` is `deny <entry>` for the deny entry that matched, or `not in allow list`. */
  | { readonly ok: false; readonly reason: 'PEER_DENIED'; readonly rule: string };

const OK: FilterResult = Object.freeze({ ok: true });

export class AddressFilter {
  /** Canonical entries, for display. */
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly #allow: CidrSet<string>;
  readonly #deny: CidrSet<string>;

  /** Throws `INVALID_ARGUMENT` naming the first entry that is not an IP or CIDR range. */
  constructor(options: AddressFilterOptions = {}) {
    [this.allow, this.#allow] = build(options.allow ?? []);
    [this.deny, this.#deny] = build(options.deny ?? []);
  }

  check(host: string): FilterResult {
    const denied = this.#deny.lookup(host);
    if (denied !== undefined) return { ok: false, reason: 'PEER_DENIED', rule: `deny ${denied}` };
    if (this.allow.length === 0 || this.#allow.lookup(host) !== undefined) return OK;
    return { ok: false, reason: 'PEER_DENIED', rule: 'not in allow list' };
  }
}

function build(entries: readonly string[]): [readonly string[], CidrSet<string>] {
  const set = new CidrSet<string>();
  const canonical = new Set<string>();
  for (const text of entries) {
    const c = parseCidr(text);
    const key = formatCidr(c);
    set.set(c, key);
    canonical.add(key);
  }
  return [Object.freeze([...canonical]), set];
}
