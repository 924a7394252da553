#!/bin/sh
# Forged SEV-SNP evidence for the "self-made root" test: an attacker's own ARK-Milan (RSA-4096,
# self-signed), an ASK SEV-Milan it signs, a SEV-VCEK (P-384) the ASK signs carrying the same
# TCB and hwID extensions as virtee/sev's vcek_milan.der, and virtee/sev's Milan report with a
# different report_data, re-signed with the forged VCEK. Everything is consistent except that
# the root is not AMD's: verification must fail at the certificate chain only.
# Run from this directory with the repository's testdata present; needs openssl and xxd.
set -eu
src=../../../../../../testdata/evidence/sev-snp/virtee-sev
subj() { echo "/OU=Engineering/C=US/L=Santa Clara/ST=CA/O=Advanced Micro Devices/CN=$1"; }
pss="-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384 -sha384"
openssl genrsa -out ark.key 4096 2>/dev/null
openssl genrsa -out ask.key 4096 2>/dev/null
openssl ecparam -name secp384r1 -genkey -noout -out vcek.key
cat > ca.ext <<X
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign
X
openssl req -new -x509 -key ark.key -subj "$(subj ARK-Milan)" -days 9000 -set_serial 65536 $pss -out ark.pem
openssl req -new -key ask.key -subj "$(subj SEV-Milan)" -out ask.csr
openssl x509 -req -in ask.csr -CA ark.pem -CAkey ark.key -set_serial 65537 -days 9000 $pss -extfile ca.ext -out ask.pem 2>/dev/null
# The real VCEK's TCB (blSPL 3, teeSPL 0, snpSPL 8, ucodeSPL 115) and hwID = the report's CHIP_ID.
hwid=$(tr -d '\n\r' < $src/report_milan.hex | cut -c $((0x1A0*2+1))-$((0x1E0*2)) | sed 's/../&:/g; s/:$//')
cat > vcek.ext <<X
1.3.6.1.4.1.3704.1.3.1=DER:02:01:03
1.3.6.1.4.1.3704.1.3.2=DER:02:01:00
1.3.6.1.4.1.3704.1.3.3=DER:02:01:08
1.3.6.1.4.1.3704.1.3.8=DER:02:01:73
1.3.6.1.4.1.3704.1.4=DER:04:40:$hwid
X
openssl req -new -key vcek.key -subj "$(subj SEV-VCEK)" -out vcek.csr
openssl x509 -req -in vcek.csr -CA ask.pem -CAkey ask.key -set_serial 0 -days 9000 $pss -extfile vcek.ext -out vcek.pem 2>/dev/null
cat ask.pem ark.pem > chain.pem
# The report: report_data set to "forged" (zero-padded), then signed over bytes 0..0x2a0.
tr -d '\n\r' < $src/report_milan.hex | xxd -r -p > report.bin
dd if=/dev/zero of=report.bin bs=1 seek=$((0x50)) count=64 conv=notrunc 2>/dev/null
printf 'forged' | dd of=report.bin bs=1 seek=$((0x50)) conv=notrunc 2>/dev/null
head -c $((0x2A0)) report.bin > signed.bin
openssl dgst -sha384 -sign vcek.key -out sig.der signed.bin
# DER ECDSA signature -> R and S, 72-byte little-endian fields at 0x2a0 and 0x2e8.
r=$(openssl asn1parse -inform der -in sig.der | awk '/INTEGER/{print $NF}' | sed -n 1p | cut -d: -f2)
s=$(openssl asn1parse -inform der -in sig.der | awk '/INTEGER/{print $NF}' | sed -n 2p | cut -d: -f2)
le() { printf '%096s' "$1" | tr ' ' 0 | fold -w2 | tac | tr -d '\n'; printf '%048d' 0; }
{ head -c $((0x2A0)) report.bin; le "$r" | xxd -r -p; le "$s" | xxd -r -p; tail -c +$((0x330+1)) report.bin; } > forged-report.bin
rm -f ark.key ask.key vcek.key ask.csr vcek.csr ca.ext vcek.ext signed.bin sig.der report.bin ark.srl ask.srl
ls -l
