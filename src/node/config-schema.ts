/**
 * Zod building blocks shared by the configuration sections (src/node/config.ts
 * and the sections kept in their own files, such as config-gossip.ts).
 */
import { z } from 'zod';
import { PqnetError } from '../core/errors.ts';

/** A list setting: an array, or (from the environment) a comma-separated string. Repeatable flags give arrays. */
export function list<T extends z.ZodType>(item: T, min = 0) {
  return z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : v,
    z.array(item).min(min).max(256),
  );
}

/** An integer setting in [min, max]. */
export const count = (min: number, max: number) => z.int().min(min).max(max);

export function configInvalid(message: string): PqnetError {
  return new PqnetError('CONFIG_INVALID', message);
}
