/**
 * Schemas for decoded CBOR values. Messages are positional CBOR arrays; a
 * schema checks shape, types and bounds and returns the typed value, or throws
 * MSG_SCHEMA naming the offending path. Extra or missing elements are errors.
 */
import { PqnetError } from '../core/errors.ts';

export interface Schema<T> {
  /** Human-readable form, used in docs and error messages. */
  readonly describe: string;
  check(value: unknown, path: string): T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

function fail(path: string, want: string, got: unknown): never {
  const kind = got instanceof Uint8Array ? `bytes(${got.length})` : Array.isArray(got) ? `array(${got.length})` : typeof got;
  throw new PqnetError('MSG_SCHEMA', `${path}: expected ${want}, got ${kind}`);
}

export function uint(max: number = Number.MAX_SAFE_INTEGER): Schema<number> {
  const describe = `uint<=${max}`;
  return {
    describe,
    check(v, path) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) fail(path, describe, v);
      return v;
    },
  };
}

export function bytes(min: number, max: number = min): Schema<Uint8Array> {
  const describe = min === max ? `bytes[${min}]` : `bytes[${min}..${max}]`;
  return {
    describe,
    check(v, path) {
      if (!(v instanceof Uint8Array) || v.length < min || v.length > max) fail(path, describe, v);
      return v;
    },
  };
}

/** A byte string whose length is one of `lengths` (for example empty or a key). */
export function bytesOneOf(...lengths: number[]): Schema<Uint8Array> {
  const describe = `bytes[${lengths.join('|')}]`;
  return {
    describe,
    check(v, path) {
      if (!(v instanceof Uint8Array) || !lengths.includes(v.length)) fail(path, describe, v);
      return v;
    },
  };
}

export function text(maxBytes: number): Schema<string> {
  const describe = `text<=${maxBytes}B`;
  return {
    describe,
    check(v, path) {
      if (typeof v !== 'string' || Buffer.byteLength(v) > maxBytes) fail(path, describe, v);
      return v;
    },
  };
}

export const bool: Schema<boolean> = {
  describe: 'bool',
  check(v, path) {
    if (typeof v !== 'boolean') fail(path, 'bool', v);
    return v;
  },
};

export function arrayOf<T>(item: Schema<T>, minItems: number, maxItems: number): Schema<T[]> {
  const describe = `[${item.describe}]{${minItems}..${maxItems}}`;
  return {
    describe,
    check(v, path) {
      if (!Array.isArray(v) || v.length < minItems || v.length > maxItems) fail(path, describe, v);
      return v.map((x, i) => item.check(x, `${path}[${i}]`));
    },
  };
}

type TupleOf<S extends readonly Schema<unknown>[]> = { -readonly [K in keyof S]: Infer<S[K]> };

export function tuple<S extends readonly Schema<unknown>[]>(...items: S): Schema<TupleOf<S>> {
  const describe = `[${items.map((s) => s.describe).join(', ')}]`;
  return {
    describe,
    check(v, path) {
      if (!Array.isArray(v) || v.length !== items.length) fail(path, `array of ${items.length}`, v);
      return items.map((s, i) => s.check(v[i], `${path}[${i}]`)) as TupleOf<S>;
    },
  };
}
