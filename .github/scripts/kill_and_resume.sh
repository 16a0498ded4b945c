#!/usr/bin/env bash
# End-to-end: index a folder, kill the run with SIGKILL part-way, run it again, check that the
# second run finished the job (every file indexed exactly once), then report.
#
#   .github/scripts/kill_and_resume.sh PHOTOS -- DEDUPDB_COMMAND...
#
# DEDUPDB_COMMAND is how to run dedupdb against PHOTOS, e.g. `dedupdb` with DEDUPDB_DB set, or
# `docker run --rm -v "$PWD/photos:/data:ro" -v state:/state IMAGE` with PHOTOS=/data,
# HOST_PHOTOS=photos (where to count the files) and KILL_COMMAND (how to SIGKILL the run:
# killing the `docker run` client would leave the container running).
set -euo pipefail
photos=$1
shift
[ "$1" = "--" ] && shift
expected=$(find "${HOST_PHOTOS:-$photos}" -type f | wc -l)
echo "== indexing $expected files; SIGKILL once ${KILL_AT:-20} are stored"
"$@" index "$photos" --quiet --workers 2 &
pid=$!
stored=0
for _ in $(seq 600); do
  sleep 0.2
  kill -0 "$pid" 2>/dev/null || break
  # Until the run has created the database, status says there is none (exit 1): 0 stored.
  stored=$({ "$@" status --json 2>/dev/null || echo '{"images": 0}'; } \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["images"])')
  [ "$stored" -ge "${KILL_AT:-20}" ] && break
done
if kill -0 "$pid" 2>/dev/null; then
  if [ -n "${KILL_COMMAND:-}" ]; then
    eval "$KILL_COMMAND"
  else
    kill -KILL "$pid"
  fi
  echo "killed the run with $stored images stored"
else
  echo "error: the run finished before it could be killed (use more files)" >&2
  exit 1
fi
wait "$pid" || true
"$@" status --json | tee status-killed.json
echo "== resuming"
"$@" index "$photos" --json | tee resumed.json
"$@" status --json | tee status.json
python3 - "$expected" <<'PY'
import json, sys
expected = int(sys.argv[1])
resumed = json.load(open("resumed.json"))
status = json.load(open("status.json"))
killed = json.load(open("status-killed.json"))
print(f"after the kill: {killed['images']} images; resumed: {resumed}")
assert 0 < killed["images"] < expected, "the first run was not interrupted mid-way"
stored = status["images"] + sum(r["failed"] + r["skipped"] for r in status["roots"])
assert stored == expected, f"{stored} files in the database, expected {expected}"
assert resumed["unchanged"] == killed["images"], "the resumed run redid finished work"
assert resumed["failed"] == 0
print("ok: every file indexed exactly once")
PY
if "$@" --help | grep -q "^  report "; then
  echo "== report"
  "$@" report --json "${REPORT_JSON:-report.json}" --html "${REPORT_HTML:-report.html}"
fi
