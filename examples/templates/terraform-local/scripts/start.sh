# Run by main.tf (terraform_data.running) with /bin/sh on every start.
# Environment: DIR, PARAMETERS (JSON), SLEEP_SECONDS, FAIL from main.tf;
# ATRIUM_* from the provisioner (ATRIUM_BUILD_NUMBER, ATRIUM_TRANSITION, ...).
set -eu

printf '%s\n' "$PARAMETERS" > "$DIR/parameters.json"
echo "build ${ATRIUM_BUILD_NUMBER:-?}" > "$DIR/running"
echo "terraform-local: workspace ${ATRIUM_WORKSPACE_NAME:-?} is running in $DIR"

if [ "$SLEEP_SECONDS" != 0 ]; then
  echo "terraform-local: sleeping ${SLEEP_SECONDS}s (sleep_seconds)"
  sleep "$SLEEP_SECONDS"
fi

if [ "$FAIL" = true ]; then
  echo "terraform-local: failing on purpose because fail is true" >&2
  exit 3
fi
