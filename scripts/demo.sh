#!/usr/bin/env bash
# Serve the demo on 127.0.0.1:8000 with a Celery worker and beat; Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CELERY=.venv/bin/celery
mkdir -p var
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "Stroma demo stopped."
}
trap stop INT TERM EXIT
"$CELERY" -A lims worker --pool=solo --loglevel=INFO --logfile=var/worker.log &
pids+=($!)
"$CELERY" -A lims beat --loglevel=INFO --logfile=var/beat.log --schedule=var/celerybeat-schedule &
pids+=($!)
echo "Worker and beat started (logs in var/worker.log and var/beat.log)."
"$PY" manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
wait -n "${pids[@]}"
