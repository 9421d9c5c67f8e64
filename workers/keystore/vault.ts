// The workers' key store: secrets at rest in IndexedDB (Dexie), each encrypted with AES-256-GCM under
// one non-extractable WebCrypto key that is itself kept in IndexedDB (the structured clone of a
// CryptoKey with extractable = false: script can use it but never read its bytes). Only worker code
// opens this database; the UI thread has its own (src/lib/db.ts) and sees handles and public material.
//
// secrets: { id, iv, data = AES-GCM(wrappingKey, iv, aad = "tensorguard/vault/v1/" + id)(bytes) }
// publics: { id, value } — public keys and metadata, stored in clear
// The AAD binds each ciphertext to its id, so rows cannot be swapped between ids.
import Dexie, { type EntityTable } from 'dexie';

interface MetaRow {
  id: string;
  key: CryptoKey;
}
interface SecretRow {
  id: string;
  iv: Uint8Array;
  data: ArrayBuffer;
  createdAt: number;
}
interface PublicRow {
  id: string;
  value: unknown;
}

export const VAULT_DB_NAME = 'tensorguard-vault';
const WRAPPING_KEY_ID = 'wrapping-key/v1';

type VaultDb = Dexie & { meta: EntityTable<MetaRow, 'id'>; secrets: EntityTable<SecretRow, 'id'>; publics: EntityTable<PublicRow, 'id'> };

function openDb(): VaultDb {
  const db = new Dexie(VAULT_DB_NAME) as VaultDb;
  db.version(1).stores({ meta: 'id', secrets: 'id', publics: 'id' });
  return db;
}

const encoder = new TextEncoder();
const aadFor = (id: string) => encoder.encode(`tensorguard/vault/v1/${id}`);

export interface Vault {
  putSecret(id: string, bytes: Uint8Array): Promise<void>;
  getSecret(id: string): Promise<Uint8Array | null>;
  hasSecret(id: string): Promise<boolean>;
  putPublic(id: string, value: unknown): Promise<void>;
  getPublic<T>(id: string): Promise<T | null>;
  listPublics<T>(prefix: string): Promise<Array<{ id: string; value: T }>>;
  /** Deletes every secret and public entry whose id starts with `prefix`. */
  deletePrefix(prefix: string): Promise<void>;
}

let shared: Vault | null = null;

/** The key store of this origin (one per worker; both workers share the database). */
export function openVault(): Vault {
  if (shared) return shared;
  const db = openDb();
  let wrappingKey: Promise<CryptoKey> | null = null;

  async function loadOrCreateKey(): Promise<CryptoKey> {
    const existing = await db.meta.get(WRAPPING_KEY_ID);
    if (existing) return existing.key;
    // Generated outside the transaction (WebCrypto is not an IndexedDB request), then stored unless
    // the other worker stored one first: everybody ends up with the key that is in the database.
    const fresh = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    return db.transaction('rw', db.meta, async () => {
      const raced = await db.meta.get(WRAPPING_KEY_ID);
      if (raced) return raced.key;
      await db.meta.put({ id: WRAPPING_KEY_ID, key: fresh });
      return fresh;
    });
  }
  const key = () => (wrappingKey ??= loadOrCreateKey().catch((e) => {
    wrappingKey = null;
    throw e;
  }));

  shared = {
    async putSecret(id, bytes) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const data = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aadFor(id) }, await key(), bytes as Uint8Array<ArrayBuffer>);
      await db.secrets.put({ id, iv, data, createdAt: Date.now() });
    },
    async getSecret(id) {
      const row = await db.secrets.get(id);
      if (!row) return null;
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: row.iv as Uint8Array<ArrayBuffer>, additionalData: aadFor(id) }, await key(), row.data);
      return new Uint8Array(plain);
    },
    async hasSecret(id) {
      return (await db.secrets.get(id)) !== undefined;
    },
    async putPublic(id, value) {
      await db.publics.put({ id, value });
    },
    async getPublic<T>(id: string) {
      return ((await db.publics.get(id))?.value as T | undefined) ?? null;
    },
    async listPublics<T>(prefix: string) {
      const rows = await db.publics.where('id').startsWith(prefix).toArray();
      return rows.map((r) => ({ id: r.id, value: r.value as T }));
    },
    async deletePrefix(prefix) {
      await db.transaction('rw', db.secrets, db.publics, async () => {
        await db.secrets.where('id').startsWith(prefix).delete();
        await db.publics.where('id').startsWith(prefix).delete();
      });
    },
  };
  return shared;
}
