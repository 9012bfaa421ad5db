#!/bin/sh
# Starts the server: migrate, collect static files, then Daphne on 0.0.0.0:$PORT (8282),
# in WORKERS processes (1; more need REDIS_URL).
# `entrypoint.sh worker` starts a queue worker instead (TASKS_BACKEND=rq), which runs detections
# until stopped; `entrypoint.sh cameras [--shard N/COUNT]` the camera watcher, which watches the cameras
# of the admin until stopped. The server migrates; the worker and the watcher only need the same settings.
# The Docker image's entrypoint, and what `make run`, `make worker` and `make cameras` call: it runs the same inside
# and outside a container.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python}"

if [ "${1:-}" = "worker" ]; then
  exec "$PYTHON" manage.py detection_worker
fi
if [ "${1:-}" = "cameras" ]; then
  shift
  exec "$PYTHON" manage.py watch_cameras "$@"
fi

PORT="${PORT:-8282}"
HOST="${HOST:-0.0.0.0}"
# In one process (starting Django is most of each step's time): a configuration the server would refuse
# (WORKERS > 1 without REDIS_URL) is refused before anything runs; then migrate (MIGRATE=false where
# another container or process migrates: several replicas starting at once), collectstatic, and the first
# admin user from DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD (and _EMAIL) when they are set.
"$PYTHON" -m facesite.serve --prepare

echo "Face detection server on port $PORT:"
echo "  page        http://localhost:$PORT/"
echo "  API docs    http://localhost:$PORT/api/docs/"
echo "  upload      curl -F image=@photo.jpg http://localhost:$PORT/image"
echo "  video       curl -F video=@clip.mp4 -F annotate=blur http://localhost:$PORT/video"
echo "  websocket   ws://localhost:$PORT/faces"
export HOST PORT
exec "$PYTHON" -m facesite.serve
