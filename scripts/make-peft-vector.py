#!/usr/bin/env python3
# Writes the PEFT LoRA test vectors under tests/vectors/peft/ in the exact on-disk format of a PyTorch PEFT
# save (peft 0.13 `save_pretrained` + safetensors `save_file`), using only the standard library.
#
# Format facts reproduced here (and checked by core/peft/adapter.test.ts):
# - adapter_config.json: `json.dumps(asdict(config), indent=2, sort_keys=True)` with no trailing newline
#   (peft/config.py PeftConfigMixin.save_pretrained); sets become lists; inference_mode is True on save.
# - adapter_model.safetensors: safetensors `serialize` (safetensors/src/tensor.rs `prepare`): tensors sorted by
#   descending dtype then by name, laid out contiguously from offset 0; header = serde_json compact JSON with
#   `__metadata__` first then tensors in layout order, each `{"dtype","shape","data_offsets"}`; header padded
#   with spaces to a multiple of 8; 8-byte little-endian u64 header length first. PEFT passes
#   metadata={"format": "pt"}. Tensor names drop the adapter name: base_model.model.<module>.lora_A.weight.
# - torch's float32 -> bfloat16 conversion rounds to nearest even (c10/util/BFloat16.h round_to_nearest_even);
#   float16 via struct 'e' is IEEE 754 binary16 round-to-nearest-even as torch does.
#
# Values are a fixed LCG stream so the vector is reproducible: `python3 scripts/make-peft-vector.py`.
# expected.json beside each vector holds per tensor the decoded values' sum (sequential double additions in
# element order), sample elements (u16 bits and value), and the SHA-256 of both files.

import hashlib
import json
import math
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'vectors', 'peft')

HIDDEN = 16  # tiny Llama-style model: hidden 16, 2 layers, q_proj 16->16, v_proj 16->8 (grouped KV heads)
V_OUT = 8
LAYERS = 2


class Lcg:
    """PCG-style 64-bit LCG (Knuth's MMIX constants); 24-bit uniforms in [0, 1)."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def uniform(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return (self.state >> 40) / float(1 << 24)


def f32_bits(x):
    return struct.unpack('<I', struct.pack('<f', x))[0]


def to_bf16(x):
    """float -> (bf16 u16 bits, decoded value), round to nearest even like torch (finite inputs only)."""
    bits = f32_bits(x)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    value = struct.unpack('<f', struct.pack('<I', rounded << 16))[0]
    return rounded & 0xFFFF, value


def to_f16(x):
    raw = struct.pack('<e', x)
    return struct.unpack('<H', raw)[0], struct.unpack('<e', raw)[0]


def peft_config(r, lora_alpha, rank_pattern, use_rslora):
    # The fields LoraConfig 0.13 writes (asdict), for a causal LM trained with target_modules q_proj, v_proj.
    return {
        'alpha_pattern': {},
        'auto_mapping': None,
        'base_model_name_or_path': 'tensorguard-tests/tiny-llama-16',
        'bias': 'none',
        'fan_in_fan_out': False,
        'inference_mode': True,
        'init_lora_weights': True,
        'layer_replication': None,
        'layers_pattern': None,
        'layers_to_transform': None,
        'loftq_config': {},
        'lora_alpha': lora_alpha,
        'lora_dropout': 0.05,
        'megatron_config': None,
        'megatron_core': 'megatron.core',
        'modules_to_save': None,
        'peft_type': 'LORA',
        'r': r,
        'rank_pattern': rank_pattern,
        'revision': None,
        'target_modules': ['q_proj', 'v_proj'],
        'task_type': 'CAUSAL_LM',
        'use_dora': False,
        'use_rslora': use_rslora,
    }


def module_rank(module, r, rank_pattern):
    # peft 0.13 LoraModel._create_and_replace: first key with re.match(rf".*\.{key}$", current_key).
    import re
    for key in rank_pattern:
        if re.match(r'.*\.' + key + r'$', module):
            return rank_pattern[key]
    return r


def build(name, dtype, r, lora_alpha, rank_pattern, use_rslora, seed, specials):
    rng = Lcg(seed)
    convert = to_bf16 if dtype == 'BF16' else to_f16
    tensors = {}  # name -> (shape, [u16 bits], [decoded values])
    for layer in range(LAYERS):
        for proj, out_features in (('q_proj', HIDDEN), ('v_proj', V_OUT)):
            module = f'model.layers.{layer}.self_attn.{proj}'
            rank = module_rank(module, r, rank_pattern)
            bound = 1.0 / math.sqrt(HIDDEN)  # kaiming_uniform(a=sqrt(5)) bound for lora_A
            for part, shape, scale in (('lora_A', [rank, HIDDEN], bound), ('lora_B', [out_features, rank], 0.02)):
                bits, values = [], []
                for _ in range(shape[0] * shape[1]):
                    b, v = convert((2.0 * rng.uniform() - 1.0) * scale)
                    bits.append(b)
                    values.append(v)
                tensors[f'base_model.model.{module}.{part}.weight'] = (shape, bits, values)
    # Edge values at fixed places (F16 vector: subnormals, -0, the largest finite half).
    for tname, index, value in specials:
        shape, bits, values = tensors[tname]
        b, v = convert(value)
        bits[index] = b
        values[index] = v

    # safetensors layout: one dtype, so plain name order (byte order; names are ASCII).
    names = sorted(tensors)
    header = {'__metadata__': {'format': 'pt'}}
    data = bytearray()
    for tname in names:
        shape, bits, _ = tensors[tname]
        begin = len(data)
        data += struct.pack('<%dH' % len(bits), *bits)
        header[tname] = {'dtype': dtype, 'shape': shape, 'data_offsets': [begin, len(data)]}
    header_bytes = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    header_bytes += b' ' * ((8 - len(header_bytes) % 8) % 8)
    st = struct.pack('<Q', len(header_bytes)) + header_bytes + bytes(data)

    config = json.dumps(peft_config(r, lora_alpha, rank_pattern, use_rslora), indent=2, sort_keys=True).encode('utf-8')

    out_dir = os.path.join(ROOT, name)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'adapter_model.safetensors'), 'wb') as f:
        f.write(st)
    with open(os.path.join(out_dir, 'adapter_config.json'), 'wb') as f:
        f.write(config)

    expected = {
        'generator': 'scripts/make-peft-vector.py',
        'dtype': dtype,
        'header_length': len(header_bytes),
        'sha256': {
            'adapter_config.json': hashlib.sha256(config).hexdigest(),
            'adapter_model.safetensors': hashlib.sha256(st).hexdigest(),
        },
        'scaling': lora_alpha / (math.sqrt(r) if use_rslora else r),
        'parameter_count': sum(len(tensors[t][2]) for t in names),
        'tensors': {},
    }
    for tname in names:
        shape, bits, values = tensors[tname]
        total = 0.0
        for v in values:  # sequential double sum (Python >= 3.12 sum() is compensated; avoid it)
            total += v
        picks = sorted({0, 1, len(values) // 2, len(values) - 1} | {i for t, i, _ in specials if t == tname})
        expected['tensors'][tname] = {
            'shape': shape,
            'data_offsets': header[tname]['data_offsets'],
            'sum': total,
            'samples': [{'index': i, 'bits': bits[i], 'value': values[i]} for i in picks],
        }
    expected['fingerprint'] = adapter_fingerprint({t: (tensors[t][0], tensors[t][2]) for t in names})
    with open(os.path.join(out_dir, 'expected.json'), 'w') as f:
        f.write(json.dumps(expected, indent=2) + '\n')


def adapter_fingerprint(tensors):
    # core/peft/adapter.ts adapterFingerprint, written independently: SHA-256 of "tensorguard/peft-adapter/v1"
    # 0x00, u32 count, then per tensor in name order: u32 len(name), name, u32 ndim, u64 dims, f32 LE values.
    h = hashlib.sha256(b'tensorguard/peft-adapter/v1\x00')
    h.update(struct.pack('<I', len(tensors)))
    for name in sorted(tensors, key=lambda n: n.encode('utf-8')):
        shape, values = tensors[name]
        raw = name.encode('utf-8')
        h.update(struct.pack('<I', len(raw)) + raw + struct.pack('<I', len(shape)))
        h.update(b''.join(struct.pack('<Q', d) for d in shape))
        h.update(struct.pack('<%df' % len(values), *values))
    return h.hexdigest()


# --- FFA-LoRA frozen A (core/peft/adapter.ts frozenLoraA), an independent implementation for the test ---

def hkdf_sha256(ikm, salt, info, length):
    # RFC 5869 section 2.2-2.3; no salt means HashLen zero bytes.
    import hmac
    prk = hmac.new(salt or b'\x00' * 32, ikm, hashlib.sha256).digest()
    okm, block = b'', b''
    for i in range((length + 31) // 32):
        block = hmac.new(prk, block + info + bytes([i + 1]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def chacha20_keystream(key, nonce, counter, length):
    # RFC 8439 section 2.3 block function.
    def rotl(v, c):
        return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))

    def quarter(x, a, b, c, d):
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = rotl(x[b] ^ x[c], 7)

    out = b''
    while len(out) < length:
        state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
        state += list(struct.unpack('<8I', key)) + [counter] + list(struct.unpack('<3I', nonce))
        x = state[:]
        for _ in range(10):
            quarter(x, 0, 4, 8, 12); quarter(x, 1, 5, 9, 13); quarter(x, 2, 6, 10, 14); quarter(x, 3, 7, 11, 15)
            quarter(x, 0, 5, 10, 15); quarter(x, 1, 6, 11, 12); quarter(x, 2, 7, 8, 13); quarter(x, 3, 4, 9, 14)
        out += struct.pack('<16I', *[(x[i] + state[i]) & 0xFFFFFFFF for i in range(16)])
        counter += 1
    return out[:length]


def frozen_lora_a(seed, name, shape):
    r, fan_in = shape
    key = hkdf_sha256(seed, None, ('tensorguard/ffa-lora-A/' + name).encode('utf-8'), 32)
    stream = chacha20_keystream(key, b'\x00' * 12, 0, 4 * r * fan_in)
    bound = 1.0 / math.sqrt(fan_in)
    values = []
    for (w,) in struct.iter_unpack('<I', stream):
        u = (w >> 8) / 16777216.0
        values.append(struct.unpack('<f', struct.pack('<f', (2.0 * u - 1.0) * bound))[0])
    return values


def write_ffa_vector():
    # RFC 8439 section 2.3.2 keystream block check of the ChaCha20 above.
    key = bytes(range(32))
    nonce = bytes.fromhex('000000090000004a00000000')
    assert chacha20_keystream(key, nonce, 1, 16).hex() == '10f1e7e4d13b5915500fdd1fa32071c4'
    seed = bytes(range(32))
    cases = []
    for name, shape in (
        ('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', [4, 16]),
        ('base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight', [2, 48]),
    ):
        values = frozen_lora_a(seed, name, shape)
        total = 0.0
        for v in values:
            total += v
        cases.append({'name': name, 'shape': shape, 'sum': total, 'first': values[:8], 'last': values[-1]})
    doc = {'generator': 'scripts/make-peft-vector.py', 'seed_hex': seed.hex(), 'cases': cases}
    with open(os.path.join(ROOT, 'ffa-lora-A.json'), 'w') as f:
        f.write(json.dumps(doc, indent=2) + '\n')


build('tiny-lora', 'BF16', r=4, lora_alpha=8, rank_pattern={}, use_rslora=False, seed=20240501, specials=[])
build(
    'tiny-lora-f16',
    'F16',
    r=4,
    lora_alpha=16,
    rank_pattern={'layers.1.self_attn.v_proj': 2},
    use_rslora=True,
    seed=20240502,
    specials=[
        ('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', 3, 2.0 ** -24),  # smallest subnormal
        ('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', 4, -(2.0 ** -20)),  # subnormal
        ('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', 5, 2.0 ** -14),  # smallest normal
        ('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', 6, -0.0),
        ('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', 7, 65504.0),  # largest finite
    ],
)

write_ffa_vector()
