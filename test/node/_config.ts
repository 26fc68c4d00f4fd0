/** Helpers shared by the configuration tests: a temporary home, a flag layer, and catching CONFIG_INVALID. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPqnetError } from '../../src/core/errors.ts';
import type { ConfigLayer } from '../../src/node/config.ts';

/** Run `fn` with a fresh temporary directory, removed afterwards. */
export function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-config-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A layer of flag values (`flag --KEY` in errors). */
export function flags(values: Record<string, unknown>): ConfigLayer {
  return { values, describe: (k) => `flag --${k}` };
}

/** The message of the CONFIG_INVALID `fn` throws; fails if it throws nothing or something else. */
export function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(isPqnetError(e) && e.code === 'CONFIG_INVALID', String(e));
    return e.message;
  }
  assert.fail('expected CONFIG_INVALID');
}
