# Helpers shared by the CLI test scripts (sourced, not run): each check prints one line, and the
# first failure exits 1 saying what was expected and what came.
checks=0

fail() {
  echo "FAIL: $*"
  exit 1
}
pass() {
  checks=$((checks + 1))
  echo "ok: $*"
}
# run NAME STATUS CMD...: runs CMD (stdout to NAME.out, stderr to NAME.err), expects STATUS.
run() {
  local name=$1 want=$2
  shift 2
  "$@" >"$name.out" 2>"$name.err"
  local got=$?
  [ "$got" = "$want" ] || fail "$name: exit status $got, expected $want; stderr: $(head -c 600 "$name.err")"
}
# contains NAME FILE TEXT: FILE contains TEXT (fixed string).
contains() {
  grep -qF -- "$3" "$2" || fail "$1: $2 does not contain \"$3\"; it has: $(head -c 800 "$2")"
}
