#!/usr/bin/env bash
# Measures the SSH gateway against plain OpenSSH on this machine, side by side in one run:
#   - throughput: a large stream from the target (`head -c N /dev/zero`), direct and through
#     the gateway;
#   - connection cost: sequential `true` commands, direct (public key) and through the gateway
#     (password and security code, each an Argon2id check, plus the onward connection).
# Prints figures and ratios; asserts nothing. Uses the release binary (build it first with
# `. scripts/env.sh && build_release`) and a private sshd on 127.0.0.1.
#
#   scripts/bench-gateway.sh [MEGABYTES] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh

MB=${1:-500}
CONNECTIONS=${2:-10}
BIN="$CARGO_TARGET_DIR/release/jumpgate"
[ -x "$BIN" ] || { echo "bench: $BIN is missing; run: . scripts/env.sh && build_release" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# The target: a private sshd that accepts our own key and the gateway key.
sshd_port=$(free_port)
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/own_key"
cat >"$work/sshd_config" <<EOF
Port $sshd_port
ListenAddress 127.0.0.1
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
UsePAM no
StrictModes no
LogLevel ERROR
EOF

# The gateway, on its own data directory.
web_port=$(free_port)
ssh_port=$(free_port)
export JUMPGATE_STORAGE_DATA_DIR="$work/data"
export JUMPGATE_STORAGE_DATABASE_URL="sqlite://$work/data/jumpgate.db"
export JUMPGATE_WEB_LISTEN="127.0.0.1:$web_port"
export JUMPGATE_SSH_LISTEN="127.0.0.1:$ssh_port"
export JUMPGATE_LOG_LEVEL=warn
"$BIN" serve >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$web_port/healthz" >/dev/null && break
  sleep 0.1
done

{ cat "$work/own_key.pub"; "$BIN" server gateway-key; } >"$work/authorized_keys"
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$sshd_port") 2>/dev/null && break
  sleep 0.1
done

password="bench-password-Correct-42"
code="bench-code-9917"
printf '%s\n' "$password" | "$BIN" user add bench --password-stdin >/dev/null
printf '%s\n' "$code" | "$BIN" user set-security-code bench >/dev/null
"$BIN" group add bench >/dev/null
"$BIN" server add target --group bench --host 127.0.0.1 --port "$sshd_port" --login root --gateway-key >/dev/null
"$BIN" grant add --user bench --group bench >/dev/null

cat >"$work/askpass" <<EOF
#!/bin/sh
case "\$1" in
  *Password*) echo '$password' ;;
  *Security*) echo '$code' ;;
  *) exit 1 ;;
esac
EOF
chmod 700 "$work/askpass"
common=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
direct() { ssh "${common[@]}" -i "$work/own_key" -o IdentitiesOnly=yes -p "$sshd_port" root@127.0.0.1 "$@"; }
gateway() {
  SSH_ASKPASS="$work/askpass" SSH_ASKPASS_REQUIRE=force \
    ssh "${common[@]}" -o PubkeyAuthentication=no -o PreferredAuthentications=keyboard-interactive \
    -p "$ssh_port" bench:target@127.0.0.1 "$@" </dev/null
}

# Best of three for the stream, so a busy moment does not decide.
stream() {
  local how=$1 best=999999 start took
  for _ in 1 2 3; do
    start=$(now)
    "$how" "head -c ${MB}000000 /dev/zero" | cat >/dev/null
    took=$(calc "$(now) - $start")
    best=$(calc "($took < $best) ? $took : $best")
  done
  echo "$best"
}
connections() {
  local how=$1 start
  start=$(now)
  for _ in $(seq "$CONNECTIONS"); do "$how" true; done
  calc "$(now) - $start"
}

direct true
gateway true
d_stream=$(stream direct)
g_stream=$(stream gateway)
d_conn=$(connections direct)
g_conn=$(connections gateway)

printf 'throughput (%s MB, best of 3):\n' "$MB"
printf '  OpenSSH direct:   %8.1f MB/s\n' "$(calc "$MB / $d_stream")"
printf '  through Jumpgate: %8.1f MB/s   (ratio %.2f of direct)\n' \
  "$(calc "$MB / $g_stream")" "$(calc "$d_stream / $g_stream")"
printf 'connection + command (%s in a row):\n' "$CONNECTIONS"
printf '  OpenSSH direct:   %8.0f ms each\n' "$(calc "$d_conn * 1000 / $CONNECTIONS")"
printf '  through Jumpgate: %8.0f ms each  (%.2f times direct)\n' \
  "$(calc "$g_conn * 1000 / $CONNECTIONS")" "$(calc "$g_conn / $d_conn")"
