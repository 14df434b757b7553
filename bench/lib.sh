# lib.sh — shared helpers of the bench/*.sh scripts (sourced, not run).
# Expects BIN (the petrel binary) and WORK (its scratch directory) to be set.

PID=""

# Stops the petrel this script started (by PID), if any.
stop_petrel() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }

# Starts petrel on a fresh $WORK with the given configuration and waits for "petrel ready".
start_petrel() { # config
  stop_petrel || true
  rm -rf "$WORK"; mkdir -p "$WORK"
  "$BIN" serve --config "$1" 2>"$WORK/stderr" & PID=$!
  for _ in $(seq 100); do grep -q "petrel ready" "$WORK/stderr" 2>/dev/null && return; sleep 0.1; done
  echo "petrel did not start:"; cat "$WORK/stderr"; exit 1
}

# The end-to-end messages/s of a RESULT line on stdin.
mps() { grep '^RESULT' | sed 's/.* e2e_mps=\([0-9.]*\).*/\1/'; }

# The median of the arguments (the upper one of an even count).
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
