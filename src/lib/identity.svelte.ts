// The officer identity as the UI knows it: public keys and fingerprints from the signing worker's
// key store, refreshed after the key ceremony or a backup import.
import type { OfficerIdentity } from '../../workers/keystore/officer-keys.ts';
import { signingWorker } from './workers.ts';

export const officer = $state<{ loaded: boolean; identity: OfficerIdentity | null; error: string | null }>({ loaded: false, identity: null, error: null });

export async function refreshIdentity(): Promise<OfficerIdentity | null> {
  try {
    officer.identity = await signingWorker().identity();
    officer.error = null;
  } catch (err) {
    officer.error = (err as Error).message;
  }
  officer.loaded = true;
  return officer.identity;
}
