#!/usr/bin/env bash
# Installs the Debian packages the integration tests need, only when something is missing:
# PostgreSQL server + psql, openssl, MariaDB server + client, OpenSSH server + client, and zsh and
# fish (tests/completions_test.ts runs the completion scripts in them), socat (tests/agent_test.ts
# talks to the unlock agent's socket as a second user with it), chromium (the web console's
# browser test drives it headless through playwright-core), and for tests/local_stores_test.ts
# pass with GnuPG, and a Secret Service (gnome-keyring, dbus-run-session, secret-tool), age
# (tests/age_slot_test.ts makes keys with age-keygen and checks interop with the age program), and
# SoftHSM2 (tests/pkcs11_slot_test.ts makes its own token with softhsm2-util and loads libsofthsm2.so),
# and ps (procps: `hecate lock` tells a hung unlock agent from a process that reuses its pid with it).
#
# Never starts or enables the system services: while packages install, a policy-rc.d that answers
# 101 ("action forbidden") is in place, and any service a package still managed to start is stopped
# again. The tests run their own servers on loopback in temporary directories.
#
# Idempotent: when everything is present it only checks a few paths and exits.
set -euo pipefail

missing=()

# PostgreSQL server binaries live outside PATH, under /usr/lib/postgresql/<version>/bin.
have_pg_server() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      return 0
    fi
  done
  return 1
}

have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

have_pg_server || missing+=(postgresql-15)
have psql || missing+=(postgresql-client-15)
have openssl || missing+=(openssl)
{ have mariadbd && have mariadb-install-db; } || missing+=(mariadb-server)
have mariadb || missing+=(mariadb-client)
have sshd || missing+=(openssh-server)
{ have ssh && have ssh-keygen; } || missing+=(openssh-client)
have zsh || missing+=(zsh)
have fish || missing+=(fish)
have socat || missing+=(socat)
have chromium || missing+=(chromium)
have pass || missing+=(pass)
{ have gpg && have gpgconf; } || missing+=(gnupg)
have secret-tool || missing+=(libsecret-tools)
have gnome-keyring-daemon || missing+=(gnome-keyring)
have dbus-run-session || missing+=(dbus-daemon)
{ have softhsm2-util && [ -e /usr/lib/softhsm/libsofthsm2.so ]; } || missing+=(softhsm2)
{ have age && have age-keygen; } || missing+=(age)
have ps || missing+=(procps)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install_test_deps: all test prerequisites present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install_test_deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "install_test_deps: installing ${missing[*]}"

# Forbid service starts while installing (the Debian policy-rc.d mechanism; 101 = forbidden).
policy=/usr/sbin/policy-rc.d
backup=""
created_policy=0
restore_policy() {
  if [ "$created_policy" -eq 1 ]; then
    rm -f "$policy"
    if [ -n "$backup" ]; then
      mv -f "$backup" "$policy"
    fi
  fi
}
trap restore_policy EXIT
if ! { [ -x "$policy" ] && grep -qx 'exit 101' "$policy"; }; then
  if [ -e "$policy" ]; then
    backup="$(mktemp "${policy}.hecate-backup.XXXXXX")"
    cp -p "$policy" "$backup"
  fi
  printf '#!/bin/sh\n# Installed by hecate scripts/install_test_deps.sh while installing.\nexit 101\n' \
    >"$policy"
  chmod 755 "$policy"
  created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Belt and braces: stop any service a package started despite the policy and undo the boot-time
# enabling the maintainer scripts did (only for packages installed just now, through their own
# init scripts and pid files, so the tests' private servers are left alone).
stop_service() {
  local name="$1"
  if [ -x "/etc/init.d/$name" ]; then
    "/etc/init.d/$name" stop >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now "$name" >/dev/null 2>&1 || true
    else
      systemctl disable "$name" >/dev/null 2>&1 || true
    fi
  fi
  if command -v update-rc.d >/dev/null 2>&1 && [ -x "/etc/init.d/$name" ]; then
    update-rc.d "$name" disable >/dev/null 2>&1 || true
  fi
}
for pkg in "${missing[@]}"; do
  case "$pkg" in
  postgresql-*) stop_service postgresql ;;
  mariadb-server) stop_service mariadb ;;
  openssh-server) stop_service ssh ;;
  esac
done

echo "install_test_deps: done"
