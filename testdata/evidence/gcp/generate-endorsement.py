#!/usr/bin/env python3
"""Builds devkeys-clean-example.binarypb: a VMLaunchEndorsement (google/gce-tcb-verifier
proto/endorsement.proto) shaped like the one gce-tcb-verifier's verifytest.FakeEndorsement makes
(`endorse --add_snp --add_tdx --commit=988881ad...`), but with only the values that origin's
tests assert: SNP 1 VMSA = verifytest.CleanExampleMeasurement, TDX default launch =
verifytest.CleanTdxExampleMeasurement. Signed as endorse.SignDoc signs: RSA-PSS, SHA-256,
salt length = hash length, over the serialized VMGoldenMeasurement.

usage: generate-endorsement.py PRIMARY_SIGNING_KEY.pem > devkeys-clean-example.binarypb
(the key is testing/devkeys/primarySigningKey.pem of google/gce-tcb-verifier; PSS is randomised,
so each run gives a different, equally valid signature).
"""
import hashlib, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

HERE = sys.path[0]

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def f_varint(field, n):
    return varint(field << 3) + varint(n) if n else b""

def f_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data if data else b""

def f_msg(field, data):  # a present sub-message, even if empty
    return varint(field << 3 | 2) + varint(len(data)) + data

cert = open(f"{HERE}/devkeys-primarySigningKey.crt", "rb").read()
root_pem = open(f"{HERE}/devkeys-root.crt", "rb").read()
snp_1 = bytes.fromhex("20ec0dbd1c0a26d184a6f11ec5a796d68ec03c9d101bdd84c03f3d9cbbc4a292a9fad098edacfa04da0da58f20be885e")
mrtd = bytes.fromhex("6e540be4917f24f74cc3292b59803d06dc7c38eb4a3c1fd6be9c735ba74bb7a23e25f98da94779d17508b243e4fb582b")
family_id = bytes.fromhex("f73a6949e8f3473b9553e40e056fa3a2")  # sev.GCEUefiFamilyID
image_id = bytes.fromhex("00112233445566778899aabbccddeeff")   # endorse picks a random UUID
policy = 0x70000  # abi.SnpPolicyToBytes{SMT, MigrateMA} (go-sev-guest: bit 16 SMT, 17 reserved-1, 18 MigrateMA)

timestamp = f_varint(1, 1725494400)  # 2024-09-05T00:00:00Z, inside the dev certificate's validity
snp = (f_varint(1, 0)
       + f_msg(2, f_varint(1, 1) + f_bytes(2, snp_1))
       + f_bytes(3, family_id) + f_bytes(4, image_id) + f_varint(5, policy))
tdx = f_msg(2, f_bytes(3, mrtd))  # {ram_gib: 0, early_accept: false, mrtd}
golden = (f_msg(1, timestamp)
          + f_bytes(3, bytes.fromhex("988881adc9fc3655077dc2d4d757d480b5ea0e11"))
          + f_bytes(4, cert)
          + f_bytes(5, hashlib.sha384(b"").digest())  # placeholder: see PROVENANCE
          + f_bytes(6, root_pem)
          + f_msg(7, snp)
          + f_msg(8, tdx))

key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
sig = key.sign(golden, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
sys.stdout.buffer.write(f_bytes(1, golden) + f_bytes(2, sig))
