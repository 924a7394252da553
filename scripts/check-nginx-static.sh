#!/usr/bin/env bash
# Proof, on a Debian machine, that nix/nginx-static.flags gives the static nginx the image needs.
#
# 1. Takes the nginx source from Debian's archive (the upstream orig tarball of this release's
#    `nginx` source package, checked by apt against the signed Release files), through a private
#    apt configuration with a temporary deb-src entry: /etc/apt is only read, for the mirror.
# 2. Runs nginx's own ./configure with exactly the flags of nix/nginx-static.flags (the same list
#    nix/nginx-static.nix passes under pkgsStatic) against Debian's static libraries, and make -j2.
# 3. Checks the binary: statically linked; `nginx -V` and the generated module list; `nginx -t` on
#    a configuration of the shape cvmkit-runtime writes (rust/crates/cvmkit-runtime/src/nginx.rs)
#    with self-signed certificates; and a live run on 127.0.0.1 high ports proxying to a local
#    python3 http.server, through curl (HTTPS with SNI, 502, redirect, HTTP fallback, unknown names).
#
# The build is cached in <repo>/.cache/nginx-static/, keyed by the flags file's sha256 and the
# source version: a second run takes seconds and needs no network.
# Output: one line per check ("ok - …" / "FAIL - …"); exits non-zero on any failure.
# As root it installs missing Debian packages with apt-get; otherwise it names them and stops.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
flags_file=$repo/nix/nginx-static.flags
cache=$repo/.cache/nginx-static
jobs=2

failures=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
die() { echo "FAIL - $*"; exit 1; }

# --- the flags -------------------------------------------------------------------------------
# The same parse as nix/nginx-static.nix: drop comment lines and blank lines, trim the ends; a
# flag with whitespace inside is refused (stdenv would split it).
[ -f "$flags_file" ] || die "flags: $flags_file is missing"
flags=()
while IFS= read -r line || [ -n "$line" ]; do
  line=${line#"${line%%[![:space:]]*}"}
  line=${line%"${line##*[![:space:]]}"}
  case $line in '' | '#'*) continue ;; esac
  case $line in *[[:space:]]*) die "flags: '$line' contains whitespace" ;; esac
  flags+=("$line")
done <"$flags_file"
[ ${#flags[@]} -gt 0 ] || die "flags: $flags_file has no flag"
flags_sha=$(sha256sum "$flags_file" | cut -d' ' -f1)
ok "flags: ${#flags[@]} flags from nix/nginx-static.flags (sha256 ${flags_sha:0:16})"

# --- tools and static libraries ----------------------------------------------------------------
debs=(build-essential libssl-dev libpcre2-dev file curl openssl python3)
grep -qx -- '--without-http_gzip_module' <<<"$(printf '%s\n' "${flags[@]}")" || debs+=(zlib1g-dev)
missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}\n' "$d" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$d")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    die "packages: missing ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  fi
  apt_log=$(mktemp)
  DEBIAN_FRONTEND=noninteractive apt-get update -q >"$apt_log" 2>&1 ||
    die "packages: apt-get update failed: $(tail -n 3 "$apt_log" | tr '\n' ' ')"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1 ||
    die "packages: apt-get install ${missing[*]} failed: $(tail -n 3 "$apt_log" | tr '\n' ' ')"
  rm -f "$apt_log"
  ok "packages: installed ${missing[*]}"
else
  ok "packages: ${debs[*]} present"
fi

# --- the source --------------------------------------------------------------------------------
mkdir -p "$cache/src"
orig_of() { { ls "$cache"/src/nginx_*.orig.tar.gz 2>/dev/null || true; } | sort -V | tail -n 1; }
orig=$(orig_of)
src_how=cached
if [ -z "$orig" ]; then
  src_how=downloaded
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "source: no VERSION_CODENAME in /etc/os-release"
  apt_dir=$(mktemp -d "$cache/apt.XXXXXX")
  trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$apt_dir/dl"
  chmod 0755 "$apt_dir" "$apt_dir/dl"
  # deb-src entries for "$codename" and "$codename-security", with the mirrors (and keyrings) this
  # machine's own apt configuration uses for them, one-line (*.list) and deb822 (*.sources) alike.
  shopt -s nullglob
  apt_files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] && apt_files+=("$f")
  done
  shopt -u nullglob
  [ ${#apt_files[@]} -gt 0 ] || die "source: no apt sources in /etc/apt to take the mirror from"
  awk -v c="$codename" '
    function emit(uri, suite, key) {
      if (suite != c && suite != c "-security") return
      if (seen[uri " " suite]++) return
      printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n", uri, suite
      if (key ~ /^\//) printf "Signed-By: %s\n", key
      printf "\n"
    }
    function flush(   i, j, nu, ns, u, s) {
      if (types ~ /(^|[ \t])deb([ \t]|$)/) {
        nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
        for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) if (u[i] != "" && s[j] != "") emit(u[i], s[j], signed)
      }
      types = uris = suites = signed = ""
    }
    FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
    deb822 {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^[ \t]*#/) next
      if (tolower($0) ~ /^types:/) { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
      else if (tolower($0) ~ /^uris:/) { sub(/^[^:]*:[ \t]*/, ""); uris = $0 }
      else if (tolower($0) ~ /^suites:/) { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
      else if (tolower($0) ~ /^signed-by:/) { sub(/^[^:]*:[ \t]*/, ""); signed = $0 }
      next
    }
    $1 == "deb" {
      key = ""; i = 2
      if ($2 ~ /^\[/) {
        while (i <= NF) { if ($i ~ /^signed-by=/) { key = $i; sub(/^signed-by=/, "", key); sub(/\]$/, "", key) }
                          if ($i ~ /\]$/) { i++; break } ; i++ }
      }
      emit($i, $(i + 1), key)
    }
    END { flush() }
  ' "${apt_files[@]}" >"$apt_dir/sources.list.d/nginx-src.sources" ||
    die "source: could not read the apt sources in /etc/apt"
  [ -s "$apt_dir/sources.list.d/nginx-src.sources" ] ||
    die "source: no apt entry for $codename or $codename-security in /etc/apt to take the mirror from"
  : >"$apt_dir/sources.list"
  apt_private=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Get::List-Cleanup=0"
  )
  apt-get "${apt_private[@]}" -q update >"$apt_dir/update.log" 2>&1 ||
    die "source: private apt-get update failed: $(tail -n 3 "$apt_dir/update.log" | tr '\n' ' ')"
  # The newest revision first (a -security one, usually); if that pool does not serve it, the
  # release's own. Only the upstream orig tarball is used, and every Debian revision of one
  # upstream version ships the same one.
  for want in nginx "nginx/$codename"; do
    rm -f "$apt_dir"/dl/*
    if (cd "$apt_dir/dl" && apt-get "${apt_private[@]}" -q source --download-only "$want") >"$apt_dir/source.log" 2>&1; then
      break
    fi
    [ "$want" = nginx ] ||
      die "source: apt-get source --download-only $want failed: $(grep '^E:' "$apt_dir/source.log" | head -n 2 | tr '\n' ' ')"
  done
  dl_orig=$({ ls "$apt_dir"/dl/nginx_*.orig.tar.gz 2>/dev/null || true; } | head -n 1)
  [ -n "$dl_orig" ] || die "source: apt-get source gave no nginx_*.orig.tar.gz ($(ls "$apt_dir/dl" | tr '\n' ' '))"
  cp "$apt_dir"/dl/nginx_*.dsc "$cache/src/"
  cp "$dl_orig" "$cache/src/.partial" && mv "$cache/src/.partial" "$cache/src/$(basename "$dl_orig")"
  rm -rf "$apt_dir"
  trap - EXIT
  orig=$(orig_of)
fi
version=$(basename "$orig" .orig.tar.gz)
version=${version#nginx_}
dsc=$({ ls "$cache"/src/nginx_"$version"-*.dsc 2>/dev/null || true; } | sort -V | tail -n 1)
debver=$(basename "${dsc:-unknown}" .dsc)
debver=${debver#nginx_}
# The .dsc apt verified names the orig tarball's sha256: check the cached copy against it.
if [ -n "$dsc" ]; then
  want=$(awk '/^Checksums-Sha256:/{f=1;next} /^[^ ]/{f=0} f && $3 ~ /\.orig\.tar\.gz$/ {print $1}' "$dsc")
  have=$(sha256sum "$orig" | cut -d' ' -f1)
  [ "$want" = "$have" ] || die "source: $(basename "$orig") does not match the sha256 in $(basename "$dsc")"
fi
ok "source: nginx $version (Debian source package $debver, orig tarball $src_how, sha256 matches the .dsc)"

# --- the build ---------------------------------------------------------------------------------
key=${flags_sha:0:16}-$version
build=$cache/build-$key
bin=$build/nginx-$version/objs/nginx
if [ -x "$bin" ] && [ -f "$build/.done" ]; then
  ok "build: cached in .cache/nginx-static/build-$key"
else
  rm -rf "$build" "$build.tmp"
  mkdir -p "$build.tmp"
  tar -xzf "$orig" -C "$build.tmp"
  [ -x "$build.tmp/nginx-$version/configure" ] || die "build: no nginx-$version/configure in $(basename "$orig")"
  t0=$(date +%s)
  (cd "$build.tmp/nginx-$version" && ./configure "${flags[@]}") >"$build.tmp/configure.log" 2>&1 || {
    tail -n 15 "$build.tmp/configure.log" | sed 's/^/    /'
    die "build: ./configure failed (log: .cache/nginx-static/build-$key.tmp/configure.log)"
  }
  make -C "$build.tmp/nginx-$version" -j"$jobs" >"$build.tmp/make.log" 2>&1 || {
    grep -E 'error|undefined reference' "$build.tmp/make.log" | head -n 15 | sed 's/^/    /'
    die "build: make failed (log: .cache/nginx-static/build-$key.tmp/make.log)"
  }
  echo "$flags_sha $version" >"$build.tmp/.done"
  mv "$build.tmp" "$build"
  # Older builds (other flags or versions) go.
  for old in "$cache"/build-*; do
    [ "$old" = "$build" ] || rm -rf "$old"
  done
  ok "build: ./configure + make -j$jobs in $(($(date +%s) - t0)) s (.cache/nginx-static/build-$key)"
fi
objs=$build/nginx-$version/objs

# --- the binary ----------------------------------------------------------------------------------
desc=$(file -b "$bin")
case $desc in
  *"statically linked"* | *"static-pie linked"*) ok "static: file says: ${desc%%, BuildID*}" ;;
  *) fail "static: file says: $desc" ;;
esac

v=$("$bin" -V 2>&1) || true
args=$(printf '%s\n' "$v" | sed -n 's/^configure arguments: //p')
if [ "$args" = "${flags[*]}" ]; then
  ok "nginx -V: $(printf '%s\n' "$v" | head -n 1 | sed 's/^nginx version: //'), configure arguments = the flags file"
else
  fail "nginx -V: configure arguments differ from the flags file: $args"
fi
ssl_line=$(printf '%s\n' "$v" | grep '^built with OpenSSL' || true)
if [ -n "$ssl_line" ] && grep -q '^TLS SNI support enabled' <<<"$v"; then
  ok "nginx -V: $ssl_line, TLS SNI support enabled"
else
  fail "nginx -V: no OpenSSL / SNI line: $v"
fi

# The modules compiled in (objs/ngx_modules.c, generated by configure): every module the runtime's
# configuration needs is there, and the ones it does not are not.
need=(ngx_http_ssl_module ngx_http_rewrite_module ngx_http_map_module ngx_http_proxy_module
  ngx_http_fastcgi_module ngx_http_uwsgi_module ngx_http_scgi_module ngx_http_log_module
  ngx_http_upstream_module)
refuse=(ngx_http_v2_module ngx_http_gzip_filter_module ngx_http_perl_module ngx_http_xslt_filter_module
  ngx_http_image_filter_module ngx_http_geoip_module ngx_mail_module ngx_stream_module
  ngx_http_ssi_filter_module ngx_http_auth_basic_module ngx_http_grpc_module ngx_http_memcached_module)
mods=$(sed -n 's/^    &\(ngx_[a-z0-9_]*\),$/\1/p' "$objs/ngx_modules.c")
absent=() present=()
for m in "${need[@]}"; do grep -qx "$m" <<<"$mods" || absent+=("$m"); done
for m in "${refuse[@]}"; do grep -qx "$m" <<<"$mods" && present+=("$m"); done
if [ ${#absent[@]} -eq 0 ] && [ ${#present[@]} -eq 0 ]; then
  ok "modules: $(wc -l <<<"$mods") built; has ssl rewrite map proxy fastcgi uwsgi scgi; no http2 gzip perl xslt image_filter geoip mail stream"
else
  fail "modules: missing ${absent[*]:-none}; unwanted ${present[*]:-none}"
fi
if grep -q '^#define NGX_PCRE2  1' "$objs/ngx_auto_config.h" 2>/dev/null ||
  grep -q '^#define NGX_PCRE2 1' "$objs/ngx_auto_config.h" 2>/dev/null; then
  ok "pcre: PCRE2 (for the rewrite module's return)"
else
  fail "pcre: NGX_PCRE2 is not defined in objs/ngx_auto_config.h"
fi

# --- nginx -t on the runtime's configuration shape ----------------------------------------------
work=$(mktemp -d)
pids=()
# Whether process $1 still runs (a child that exited stays a zombie until waited for).
alive() {
  local _pid _comm state
  [ -r "/proc/$1/stat" ] || return 1
  read -r _pid _comm state _ 2>/dev/null <"/proc/$1/stat" || return 1
  [ "$state" != Z ]
}
# Stops the processes this script started, by pid: SIGTERM, up to 5 s, then SIGKILL.
stop() {
  local i
  kill -TERM "$1" 2>/dev/null || return 0
  for i in $(seq 1 50); do alive "$1" || break; sleep 0.1; done
  alive "$1" && kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null || true
}
cleanup() {
  local p
  for p in "${pids[@]}"; do stop "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT
chmod 0755 "$work"
mkdir -p "$work/run" "$work/log" "$work/www"
free_ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r backend_port https_port http_port <<<"$free_ports"

# Certificates in the runtime's layout: {tls_dir}/{hostname}/fullchain.pem, privkey.pem.
for h in app.test gone.test; do
  mkdir -p "$work/tls/$h"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$h" -addext "subjectAltName=DNS:$h" \
    -keyout "$work/tls/$h/privkey.pem" -out "$work/tls/$h/fullchain.pem" >/dev/null 2>&1 ||
    die "certificates: openssl req failed"
done
user_line=
[ "$(id -u)" = 0 ] && user_line="user nobody nogroup;"

# As nginx::render writes it for hostnames "app.test,gone.test,plain.test" and 2 workloads, with
# plain.test's certificate missing (HTTP fallback), listen-addr 127.0.0.1 and high ports.
conf=$work/nginx.conf
cat >"$conf" <<EOF
# Generated by cvmkit-runtime from the \`hostname\` metadata value; do not edit.
# app.test -> workload 0 (127.0.0.1:$backend_port)
# gone.test -> no workload (502)
# plain.test -> workload 0 (127.0.0.1:$backend_port)
$user_line
worker_processes 1;
pid $work/run/nginx.pid;
error_log $work/log/nginx-error.log;
events {
    worker_connections 512;
}
http {
    access_log $work/log/nginx-access.log;
    client_body_temp_path $work/run/client_body;
    proxy_temp_path $work/run/proxy;
    fastcgi_temp_path $work/run/fastcgi;
    uwsgi_temp_path $work/run/uwsgi;
    scgi_temp_path $work/run/scgi;
    server_names_hash_bucket_size 128;
    server_tokens off;
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        '' close;
    }
    proxy_http_version 1.1;
    proxy_set_header Host \$host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    proxy_set_header Upgrade \$http_upgrade;
    proxy_set_header Connection \$connection_upgrade;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:cvmkit_tls:1m;
    server {
        listen 127.0.0.1:$http_port default_server;
        server_name _;
        return 444;
    }
    server {
        listen 127.0.0.1:$https_port ssl default_server;
        server_name _;
        ssl_reject_handshake on;
    }
    server {
        listen 127.0.0.1:$https_port ssl;
        server_name app.test;
        ssl_certificate $work/tls/app.test/fullchain.pem;
        ssl_certificate_key $work/tls/app.test/privkey.pem;
        location / {
            proxy_pass http://127.0.0.1:$backend_port;
        }
    }
    server {
        listen 127.0.0.1:$http_port;
        server_name app.test;
        return 301 https://\$host\$request_uri;
    }
    server {
        listen 127.0.0.1:$https_port ssl;
        server_name gone.test;
        ssl_certificate $work/tls/gone.test/fullchain.pem;
        ssl_certificate_key $work/tls/gone.test/privkey.pem;
        return 502;
    }
    server {
        listen 127.0.0.1:$http_port;
        server_name gone.test;
        return 301 https://\$host\$request_uri;
    }
    server {
        listen 127.0.0.1:$http_port;
        server_name plain.test;
        location / {
            proxy_pass http://127.0.0.1:$backend_port;
        }
    }
}
EOF
# The runtime's own check: nginx -t -q -c CONF -e ERRLOG.
if t_out=$("$bin" -t -q -c "$conf" -e "$work/log/startup-error.log" 2>&1); then
  ok "nginx -t -q -c <runtime-shaped nginx.conf>: accepted (3 hostnames: HTTPS proxy, HTTPS 502, HTTP fallback${user_line:+; user nobody nogroup})"
else
  die "nginx -t: refused: $t_out"
fi

# --- live: HTTPS in front of a local backend ------------------------------------------------------
token=cvmkit-$$-$RANDOM
printf '%s' "$token" >"$work/www/index.html"
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$backend_port" >"$work/log/backend.log" 2>&1 &
pids+=($!)
"$bin" -c "$conf" -e "$work/log/startup-error.log" -g 'daemon off;' >"$work/log/nginx.out" 2>&1 &
nginx_pid=$!
pids=("$nginx_pid" "${pids[@]}")
up=
for _ in $(seq 1 100); do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$backend_port/" &&
    curl -s -o /dev/null --max-time 1 -k --resolve "app.test:$https_port:127.0.0.1" "https://app.test:$https_port/"; then
    up=1
    break
  fi
  alive "$nginx_pid" || break
  sleep 0.1
done
if [ -z "$up" ]; then
  fail "live: nginx or the backend did not come up within 10 s: $(tail -n 3 "$work/log/nginx-error.log" "$work/log/startup-error.log" 2>/dev/null | tr '\n' ' ')"
else
  c() { curl -sS --max-time 5 --noproxy '*' "$@" 2>&1; }
  body=$(c -k --resolve "app.test:$https_port:127.0.0.1" -w ' %{http_code}' "https://app.test:$https_port/" || true)
  [ "$body" = "$token 200" ] && ok "live: curl -k https://app.test (SNI) -> 200 from the python3 backend through nginx" ||
    fail "live: https://app.test gave: $body"
  code=$(c -k --resolve "gone.test:$https_port:127.0.0.1" -o /dev/null -w '%{http_code}' "https://gone.test:$https_port/" || true)
  [ "$code" = 502 ] && ok "live: https://gone.test (no workload) -> 502" || fail "live: https://gone.test gave: $code"
  loc=$(c --resolve "app.test:$http_port:127.0.0.1" -o /dev/null -w '%{http_code} %{redirect_url}' "http://app.test:$http_port/x?y=1" || true)
  [ "$loc" = "301 https://app.test/x?y=1" ] && ok "live: http://app.test -> 301 https://app.test/x?y=1" ||
    fail "live: http://app.test gave: $loc"
  body=$(c --resolve "plain.test:$http_port:127.0.0.1" -w ' %{http_code}' "http://plain.test:$http_port/" || true)
  [ "$body" = "$token 200" ] && ok "live: http://plain.test (no certificate: HTTP fallback) -> 200 from the backend" ||
    fail "live: http://plain.test gave: $body"
  if out=$(c -k --resolve "other.test:$https_port:127.0.0.1" -o /dev/null "https://other.test:$https_port/"); then
    fail "live: an unknown SNI name got a TLS session"
  else
    ok "live: unknown SNI name -> handshake rejected (ssl_reject_handshake)"
  fi
  if out=$(c --resolve "other.test:$http_port:127.0.0.1" -o /dev/null "http://other.test:$http_port/"); then
    fail "live: an unknown HTTP host got an answer"
  else
    case $out in *"Empty reply"*) ok "live: unknown HTTP host -> connection closed (444)" ;;
      *) fail "live: unknown HTTP host: $out" ;; esac
  fi
fi
kill -TERM "$nginx_pid" 2>/dev/null || true
stopped=
for _ in $(seq 1 50); do
  alive "$nginx_pid" || { stopped=1; break; }
  sleep 0.1
done
if [ -n "$stopped" ]; then
  wait "$nginx_pid" 2>/dev/null || true
  ok "live: nginx stopped on SIGTERM"
else
  fail "live: nginx still running 5 s after SIGTERM"
fi

if [ "$failures" -gt 0 ]; then
  echo "FAIL - $failures check(s) failed"
  exit 1
fi
echo "ok - all checks passed"
