/** Provider selection: native when the runtime has every primitive, portable otherwise. */
import { PqnetError } from '../core/errors.ts';
import { nativeProvider, nativeSupported } from './native.ts';
import { portableProvider } from './portable.ts';
import type { CryptoProvider, ProviderName } from './provider.ts';

let cachedNative: boolean | undefined;

export function isNativeAvailable(): boolean {
  cachedNative ??= nativeSupported();
  return cachedNative;
}

/** The provider named, or the best available one when `name` is omitted. */
export function getProvider(name?: ProviderName): CryptoProvider {
  if (name === 'portable') return portableProvider;
  if (name === 'native') {
    if (!isNativeAvailable()) throw new PqnetError('UNSUPPORTED_ALGORITHM', 'this runtime lacks native ML-KEM/ML-DSA (Node.js >= 24.7 required)');
    return nativeProvider;
  }
  return isNativeAvailable() ? nativeProvider : portableProvider;
}
