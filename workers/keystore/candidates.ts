// A reviewed candidate adapter as the key store keeps it (encrypted at rest like the keys): the round
// id and the two PEFT files, so the signing worker can release exactly what the HE worker decrypted.
// layout: "TG" 0x21 0x01 | roundId str64 | bytes(adapter_config.json) | bytes(adapter_model.safetensors)
import { ByteReader, ByteWriter } from '../../core/codec/binary.ts';

const TYPE_CANDIDATE = 0x21;

export interface StoredCandidate {
  roundId: string;
  adapterConfigJson: Uint8Array;
  adapterSafetensors: Uint8Array;
}

export function encodeCandidate(c: StoredCandidate): Uint8Array {
  return new ByteWriter().header(TYPE_CANDIDATE, 1).str(c.roundId, 64).bytes(c.adapterConfigJson, 1 << 20).bytes(c.adapterSafetensors, 1 << 30).finish();
}

export function decodeCandidate(bytes: Uint8Array): StoredCandidate {
  const r = new ByteReader(bytes, 'stored candidate');
  r.header(TYPE_CANDIDATE, [1]);
  const out = { roundId: r.str(64, 'roundId'), adapterConfigJson: r.bytes(1 << 20, 'adapter_config.json'), adapterSafetensors: r.bytes(1 << 30, 'adapter_model.safetensors') };
  r.end();
  return out;
}
