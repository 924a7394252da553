#!/usr/bin/env python3
"""Independent checks of a TDX DCAP quote, for cvmkit's tests (a peer, never run by cvmkit).

    tdx_quote.py QUOTE [COLLATERAL NOW]

Prints JSON: the quote signature checked with Python `cryptography` (ECDSA P-256 by the
attestation key over header + TD report, offsets from Intel's DCAP quote v4/v5 layout), and with
collateral the TCB status from dcap-qvl's Python build (an independent build of the peer).
"""
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

raw = open(sys.argv[1], "rb").read()
version = struct.unpack_from("<H", raw, 0)[0]
if version == 4:
    signed = 48 + 584  # header + TD 1.0 report
else:  # v5: header + body descriptor (type u16, size u32) + body
    body_size = struct.unpack_from("<I", raw, 50)[0]
    signed = 48 + 6 + body_size
sig = raw[signed + 4 : signed + 68]
key = raw[signed + 68 : signed + 132]
pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + key)
der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
try:
    pub.verify(der, raw[:signed], ec.ECDSA(hashes.SHA256()))
    ok = True
except InvalidSignature:
    ok = False
out = {"quote_signature": ok}
if len(sys.argv) == 4:
    import dcap_qvl

    collateral = dcap_qvl.QuoteCollateralV3.from_json(open(sys.argv[2]).read())
    try:
        out["tcb_status"] = dcap_qvl.verify(raw, collateral, int(sys.argv[3])).status
    except Exception as e:  # noqa: BLE001 - the peer's refusal is the answer
        out["error"] = str(e)
print(json.dumps(out))
