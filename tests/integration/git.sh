#!/usr/bin/env bash
# git: init a repository, make commits, then log, diff, blame, grep, gc and fsck. Author, committer
# and dates are fixed, so hashes and output are the same in both runs.
#   git.sh LIBPOOLGUARD
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
pg_need git seq

workload() {
  export HOME="$PWD/home" GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat PAGER=cat
  export GIT_AUTHOR_NAME="Pool Guard" GIT_AUTHOR_EMAIL="pg@example.org"
  export GIT_COMMITTER_NAME="Pool Guard" GIT_COMMITTER_EMAIL="pg@example.org"
  mkdir home repo
  cd repo || return 1
  git init -q -b main
  git config gc.auto 0
  git config pack.threads 1
  git config core.pager cat
  mkdir -p src/a src/b docs
  local i c minute
  for i in $(seq 1 60); do
    seq "$i" 3 $((i * 40)) >"src/a/file$i.txt"
    printf 'line %s of b\n' $(seq 1 $((i % 17 + 1))) >"src/b/item$i.txt"
  done
  for c in $(seq 1 25); do
    minute="$(printf %02d "$c")"
    export GIT_AUTHOR_DATE="2024-01-01T00:$minute:00Z" GIT_COMMITTER_DATE="2024-01-01T00:$minute:30Z"
    printf 'commit %s\n' "$c" >>docs/changes.txt
    seq "$c" 7 $((c * 100)) >"src/a/file$((c * 2)).txt"
    [[ $((c % 5)) -ne 0 ]] || git rm -q "src/b/item$c.txt"
    if [[ $c -eq 12 ]]; then
      git checkout -q -b topic
      echo "topic work" >docs/topic.txt
    fi
    git add -A
    git commit -q -m "change $c" -m "Touches file$((c * 2)) and docs/changes.txt."
    if [[ $c -eq 16 ]]; then
      git checkout -q main
      git merge -q --no-ff -m "merge topic" topic
    fi
  done
  git log --stat --format='%H %an %ad %s' --date=iso-strict
  git log --graph --oneline --all
  git diff --stat HEAD~10 HEAD
  git diff HEAD~3 HEAD -- src/a
  git blame -s docs/changes.txt | head -n 20
  git grep -c 'line 7' -- src/b
  git gc -q
  git count-objects -v | grep -v '^size'
  git fsck --no-progress --strict
  git rev-list --objects --all | sort | sha256sum
}

pg_run_both git workload
pg_stats_check git 10
pg_expect_ge "$(pg_stat git small_allocs sum)" 20000 "small_allocs over all git processes"
