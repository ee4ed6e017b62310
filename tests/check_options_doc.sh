#!/usr/bin/env bash
# The options lists in the docs must be exactly what base/options.inc generates: the Markdown table
# of docs/OPTIONS.md and README.md (pg_options --markdown), and the list between the BEGIN OPTIONS
# and END OPTIONS comments of the man page, docs/poolguard.1 (pg_options --man).
#   check_options_doc.sh PG_OPTIONS DOC...           fails if a DOC is out of date
#   check_options_doc.sh --write PG_OPTIONS DOC...   regenerates them in place
set -euo pipefail
write=0
if [[ ${1:-} == --write ]]; then
  write=1
  shift
fi
tool=$1
shift
markdown=$("$tool" --markdown)
man=$("$tool" --man)
[[ -n "$markdown" && -n "$man" ]] || { echo "$tool printed no options" >&2; exit 1; }

# extract DOC / replace DOC NEW: the generated part of DOC. Markdown: the table whose header row
# starts with "| variable". roff (*.1): the lines between the two marker comments.
extract() {
  case "$1" in
    *.1) awk '/^\.\\" END OPTIONS/ {exit} t {print} /^\.\\" BEGIN OPTIONS/ {t = 1}' "$1" ;;
    *) awk '/^\| variable/ {t = 1} t && /^\|/ {print; next} t {exit}' "$1" ;;
  esac
}
replace() {
  local new="$2"
  case "$1" in
    *.1) NEW="$new" awk '/^\.\\" BEGIN OPTIONS/ {print; print ENVIRON["NEW"]; skip = 1; next}
           /^\.\\" END OPTIONS/ {skip = 0} !skip {print}' "$1" ;;
    *) NEW="$new" awk '/^\| variable/ && !done {print ENVIRON["NEW"]; skip = 1; done = 1; next}
         skip && /^\|/ {next} {skip = 0; print}' "$1" ;;
  esac
}

for doc in "$@"; do
  case "$doc" in
    *.1) want=$man generator="pg_options --man" ;;
    *) want=$markdown generator="pg_options --markdown" ;;
  esac
  got=$(extract "$doc")
  [[ "$got" == "$want" ]] && continue
  if [[ $write -eq 1 ]]; then
    [[ -n "$got" ]] || { echo "$doc has no options list to replace" >&2; exit 1; }
    replace "$doc" "$want" >"$doc.new" && mv "$doc.new" "$doc"
    echo "regenerated $doc"
    continue
  fi
  diff -u <(echo "$got") <(echo "$want") >&2 || true
  echo "$doc is out of date: regenerate its options list ($generator) with" \
    "tests/check_options_doc.sh --write PG_OPTIONS $doc" >&2
  exit 1
done
echo "options lists in sync: $*"
