#!/usr/bin/env bash
# Authenticated REGISTER throughput: our engine against Kamailio, same machine, same run, same sipp
# scenario and users (../shared/bench/kamailio-anchor/). Prints, for ours, the highest rate with 0 failed
# and 0 retransmitted registrations, the p99 response time at that rate and the engines' CPU, then
# Kamailio's figure, and last:  register ours=N/s kamailio=M/s ratio=R
#
#   bench/register.sh [RATES (default 1000,2000,3000,3500,4000)] [SECONDS per step (default 20)]
#   env: WORKERS (`sipserver --workers`: engine processes on the port, default 2; ENGINES is the old
#        name), PORT (5090), ANCHOR (the anchor folder), BENCH_DATABASE_URL, BENCH_REDIS_URL,
#        SKIP_KAMAILIO=1, SKIP_MULTI=1 (skip the one-socket-per-call ramp), WARMUP=0 (skip the one
#        registration per user at 200/s that ours gets before its ramp; see below)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rates=${1:-1000,2000,3000,3500,4000}
duration=${2:-20}
WORKERS=${WORKERS:-${ENGINES:-2}}
PORT=${PORT:-5090}
ANCHOR=${ANCHOR:-$root/../shared/bench/kamailio-anchor}
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/smartalex_bench}
export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/12}
export DJANGO_SETTINGS_MODULE=smartalex.settings.dev LOG_LEVEL=WARNING
py=$root/.venv/bin/python
out=$(mktemp -d /tmp/register-bench.XXXX)
cd "$root"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

psql "${DATABASE_URL%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='${DATABASE_URL##*/}'" | grep -q 1 ||
  psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE ${DATABASE_URL##*/}"
$py manage.py migrate -v0
$py bench/make_trunks.py --count 1000 --user-prefix user --pass-prefix benchpassword
$py -c "import redis; redis.Redis.from_url('$REDIS_URL').flushdb()"

# One supervisor, WORKERS engine processes: sipp sends everything from one socket, and the
# supervisor's SO_REUSEPORT program spreads REGISTERs from loopback over the workers by Call-ID.
supervisor=
cleanup() { [ -n "$supervisor" ] && kill "$supervisor" 2>/dev/null && wait "$supervisor" 2>/dev/null || true; supervisor=; }
trap cleanup EXIT
$py manage.py sipserver --host 127.0.0.1 --port "$PORT" --tls-port 0 --workers "$WORKERS" >"$out/engine.log" 2>&1 &
supervisor=$!
for _ in $(seq 1 120); do [ "$(grep -c ' ready:' "$out/engine.log" 2>/dev/null)" -ge "$WORKERS" ] && break; sleep 0.5; done
mapfile -t pids < <(sed -n 's/^sipserver worker .*:\([0-9]*\) ready:.*/\1/p' "$out/engine.log")

# Warm-up, ours only: every user registers once at 200/s before the ramp, so that the ramp
# measures refreshes as Kamailio's does; a trunk's first registration also sends the portal its
# status and a SIP trace (Kamailio has no such work). WARMUP=0 skips it.
if [ "${WARMUP:-1}" = 1 ]; then
  mkdir -p "$out/warmup" && cp "$ANCHOR/reg_auth.xml" "$out/warmup/"
  python3 - "$out/warmup/users.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("SEQUENTIAL\n")
    for i in range(1, 1001):
        f.write(f"user{i:04d};127.0.0.1;[authentication username=user{i:04d} password=benchpassword{i:04d}]\n")
PY
  (cd "$out/warmup" && timeout 60 sipp "127.0.0.1:$PORT" -sf reg_auth.xml -inf users.csv -i 127.0.0.1 -p 5080 \
    -m 1000 -r 200 -nostdin >/dev/null 2>&1 || true)
fi

cpu_ticks() { local t=0; for p in "$supervisor" "${pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
ticks_before=$(cpu_ticks); wall_before=$(date +%s.%N)
OUT_DIR=$out/ours SIP_TARGET=127.0.0.1:$PORT USER_PREFIX=user PASS_PREFIX=benchpassword \
  bash "$ANCHOR/run.sh" "$rates" "$duration" | tee "$out/ours.txt"
ticks_after=$(cpu_ticks); wall_after=$(date +%s.%N)
ours=$(awk '/highest clean rate/ {print $(NF-1)}' "$out/ours.txt")
cpu=$(python3 -c "print(round(100*($ticks_after-$ticks_before)/$(getconf CLK_TCK)/($wall_after-$wall_before)))")
registrations=$(awk '$1 ~ /^[0-9]+$/ && NF == 6 {n += $2 + $3} END {print n + 0}' "$out/ours.txt")
us_per_reg=$(python3 -c "print(round(1e6*($ticks_after-$ticks_before)/$(getconf CLK_TCK)/max(1,$registrations)))")

# p99 response time at the best clean rate (or the lowest rate tried), from sipp's per-call RTT file.
probe_rate=$([ "${ours:-0}" -gt 0 ] && echo "$ours" || echo "${rates%%,*}")
(cd "$out/ours" && sipp "127.0.0.1:$PORT" -sf reg_auth.xml -inf users.csv -i 127.0.0.1 -p 5081 \
  -m $((probe_rate * 10)) -r "$probe_rate" -nostdin -trace_rtt -rtt_freq 1 -buff_size 4194304 >/dev/null 2>&1 || true)
p99=$(python3 - "$out/ours" <<'PY'
import glob, sys
values = []
for path in glob.glob(sys.argv[1] + "/*_rtt.csv"):
    for line in open(path).read().splitlines()[1:]:
        parts = line.split(";")
        if len(parts) > 2 and parts[2].strip():
            values.append(float(parts[2]))
values.sort()
print(f"{values[int(len(values) * 0.99) - 1]:.1f}" if values else "n/a")
PY
)
# The anchor's sipp sends everything from one socket, so SO_REUSEPORT (which spreads packets by
# source address and port) gives all of it to one engine. Real PBXs come from many addresses:
# the same scenario and users with one socket per call (`-t un`) shows how the engines scale out.
multi_best=0
[ "${SKIP_MULTI:-0}" = 1 ] && rates_multi= || rates_multi=${rates//,/ }
for rate in $rates_multi; do
  stat=$out/multi_$rate.csv
  (cd "$out/ours" && timeout $((duration * 3 + 30)) sipp "127.0.0.1:$PORT" -sf reg_auth.xml -inf users.csv \
    -i 127.0.0.1 -t un -max_socket 5000 -m $((rate * duration)) -r "$rate" -nostdin -trace_stat -stf "$stat" -fd 1 \
    -buff_size 4194304 -max_recv_loops 10000 -max_sched_loops 10000 >/dev/null 2>&1 || true)
  read -r ok failed retrans < <(python3 - "$stat" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter=";"))
last = rows[-1] if rows else {}
print(last.get("SuccessfulCall(C)", 0), last.get("FailedCall(C)", 0), last.get("Retransmissions(C)", 0))
PY
)
  printf "multi-source %6s/s: %8s ok %6s failed %7s retransmissions\n" "$rate" "$ok" "$failed" "$retrans"
  if [ "$failed" = 0 ] && [ "$retrans" = 0 ] && [ "$ok" -gt 0 ]; then multi_best=$rate; fi
done

cleanup
echo "REGISTERs handled per worker (whole run): $(grep -o 'worker [0-9]*/[0-9]* .* stopped: .*' "$out/engine.log" |
  sed 's/^worker \([0-9]*\)\/[0-9]* .*, \([0-9]*\) REGISTERs/#\1=\2/' | tr '\n' ' ')"
[ -n "$rates_multi" ] && echo "ours, one socket per call (-t un), $WORKERS workers: highest clean rate $multi_best REGISTER/s"
echo "ours: highest clean rate ${ours:-0} REGISTER/s with $WORKERS worker processes; p99 response ${p99} ms" \
  "at $probe_rate/s; engines' CPU ${cpu}% of one core over the ramp, ${us_per_reg} µs CPU per registration;" \
  "load before: $load_before"

if [ "${SKIP_KAMAILIO:-0}" = 1 ]; then
  kam=0
else
  OUT_DIR=$out/kamailio bash "$ANCHOR/run.sh" "$rates" "$duration" | tee "$out/kamailio.txt"
  kam=$(awk '/highest clean rate/ {print $(NF-1)}' "$out/kamailio.txt")
fi
ratio=$(python3 -c "print(round(${ours:-0}/${kam:-0}, 2) if ${kam:-0} else 'n/a')")
echo "register ours=${ours:-0}/s kamailio=${kam:-0}/s ratio=$ratio"
