#!/usr/bin/env bash
# Installs the real servers that the catalogue tests start (tests/support/servers.rs):
#   * Debian packages: prometheus prometheus-alertmanager prometheus-blackbox-exporter
#     redis-server postgresql mariadb-server nats-server mosquitto rabbitmq-server
#     etcd-server (the cluster crate's tests: crates/cluster/tests/etcd)
#     (as root; none of them is left running or enabled to start by the install);
#   * for the status page's browser test (crates/server/tests/status_page.rs):
#     chromium, chromium-driver, and fonts-dejavu-core so its screenshots have text;
#   * moto (S3 + IAM mock, from PyPI), pinned, in a venv at <target>/test-tools/moto
#     (unless $SANDPORT_MOTO_SERVER names one).
# Idempotent: when everything is there it only checks, in well under a second.
#
#   scripts/install-test-deps.sh          # install what is missing
#   scripts/install-test-deps.sh --check  # only report; exit 1 if something is missing
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
venv=$target/test-tools/moto

check_only=0
case ${1:-} in
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ------------------------------------------------------------ Debian packages
# program (a glob) -> the package that ships it
programs=(
  "/usr/bin/prometheus prometheus"
  "/usr/bin/prometheus-alertmanager prometheus-alertmanager"
  "/usr/bin/prometheus-blackbox-exporter prometheus-blackbox-exporter"
  "/usr/bin/redis-server redis-server"
  "/usr/lib/postgresql/*/bin/postgres postgresql"
  "/usr/lib/postgresql/*/bin/initdb postgresql"
  "/usr/sbin/mariadbd mariadb-server"
  "/usr/bin/mariadb-install-db mariadb-server"
  "/usr/sbin/nats-server nats-server"
  "/usr/sbin/mosquitto mosquitto"
  "/usr/bin/mosquitto_passwd mosquitto"
  "/usr/lib/rabbitmq/bin/rabbitmq-server rabbitmq-server"
  "/usr/bin/epmd rabbitmq-server"
  "/usr/bin/etcd etcd-server"
  "/usr/bin/setpriv util-linux"
  "/usr/bin/chromium chromium"
  "/usr/bin/chromedriver chromium-driver"
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core"
)

missing=()
for entry in "${programs[@]}"; do
  read -r pattern package <<<"$entry"
  # shellcheck disable=SC2086 # the pattern is a glob
  if ! compgen -G "$pattern" >/dev/null; then
    [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
  fi
done

# moto: $SANDPORT_MOTO_SERVER, else the pinned venv (rebuilt when it no
# longer runs, e.g. after its python moved), as the tests look for it.
moto_ok() { [ -x "$1" ] && "$1" --help >/dev/null 2>&1; }
moto=""
if [ -n "${SANDPORT_MOTO_SERVER:-}" ]; then
  moto_ok "$SANDPORT_MOTO_SERVER" && moto=$SANDPORT_MOTO_SERVER
elif moto_ok "$venv/bin/moto_server"; then
  moto=$venv/bin/moto_server
fi
# A venv needs python3 with venv and ensurepip (Debian: python3-venv).
if [ -z "$moto" ] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

if [ $check_only = 1 ]; then
  status=0
  if [ ${#missing[@]} -gt 0 ]; then echo "missing Debian packages: ${missing[*]}"; status=1; fi
  if [ -z "$moto" ]; then echo "missing moto_server (would go to $venv)"; status=1; fi
  [ $status = 0 ] && echo "all test servers are installed (moto_server: $moto)"
  exit $status
fi

if [ ${#missing[@]} -gt 0 ]; then
  apt_install="apt-get install -y -q --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "run this script as root, or:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive $apt_install" >&2
    echo "  (keep the services from starting: put 'exit 101' in /usr/sbin/policy-rc.d first)" >&2
    exit 1
  fi
  t0=$(now_ms)
  # Keep the packages' maintainer scripts from starting the daemons
  # (invoke-rc.d and deb-systemd-invoke ask policy-rc.d; 101 = not allowed).
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  echo "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive $apt_install
  if [ $made_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  echo "Debian packages installed in $(( $(now_ms) - t0 )) ms"
fi

# ------------------------------------------------------------ moto (PyPI)
if [ -z "$moto" ]; then
  t0=$(now_ms)
  echo "installing moto into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  # Everything 'moto[s3]' + flask + flask-cors pull in, pinned. S3 and IAM
  # (in moto's core) only: 'moto[server]' would be ~320 MB and 64 packages.
  cat >"$constraints" <<'EOF'
blinker==1.9.0
boto3==1.44.8
botocore==1.44.8
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
click==8.5.1
cryptography==50.0.2
Flask==3.1.3
flask-cors==6.0.5
idna==3.20
itsdangerous==2.2.0
Jinja2==3.1.6
jmespath==1.1.0
MarkupSafe==3.0.4
moto==5.2.5
py-partiql-parser==0.6.3
pycparser==3.12
python-dateutil==2.9.0.post0
PyYAML==6.0.4
requests==2.34.2
responses==0.26.3
s3transfer==0.19.3
six==1.17.0
urllib3==2.8.0
Werkzeug==3.1.9
xmltodict==1.0.4
EOF
  "$venv/bin/pip" install -q --disable-pip-version-check -c "$constraints" \
    'moto[s3]==5.2.5' 'flask==3.1.3' 'flask-cors==6.0.5'
  moto_ok "$venv/bin/moto_server" || { echo "moto_server does not run from $venv" >&2; exit 1; }
  moto=$venv/bin/moto_server
  echo "moto installed in $(( $(now_ms) - t0 )) ms"
fi

echo "all test servers are installed (moto_server: $moto)"
