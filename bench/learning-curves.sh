#!/usr/bin/env bash
# Stance learning curve (macro-F1 on the seeds against training-set size) and
# cross-lingual transfer (train without a language, test on it), with the linear head
# on frozen e5-small-q4 vectors. Heads go to a temporary folder; nothing committed moves.
#   bash bench/learning-curves.sh [STANCE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/stance}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
S=eval/stance-train
P=eval/stance-train-pairs
path() { case "$1" in *-pairs) echo "$P/$1.tsv" ;; *) echo "$S/$1.tsv" ;; esac; }
f1() { # head data [lang]
  "$BIN" eval --task stance --data "$2" --variants e5-small-q4 --heads "$1" --format json |
    python3 -c "import json,sys; r=json.load(sys.stdin)['rows'][1]; l='${3:-}'; m=r['per_language'][l] if l else r['metrics']; print(f\"{m['macro_f1']:.3f} [{m['macro_f1_ci'][0]:.2f}-{m['macro_f1_ci'][1]:.2f}]\")"
}
train() { "$BIN" train --task stance --data "${@:2}" --out "$T/$1.json" >/dev/null 2>&1; }
echo "| training files | sentences | seeds macro-F1 [95% CI] |"
echo "|---|---:|---|"
for set in "en" "it-ai" "it-ai it-tech" "it-ai it-tech en de" "it-ai it-tech en de fr es" \
  "it-ai it-tech en de fr es it-pairs" "it-ai it-tech en de fr es it-pairs en-pairs de-pairs fr-pairs es-pairs"; do
  files=$(for f in $set; do path "$f"; done)
  n=$(cat $files | grep -vc '^id	')
  name=$(echo "$set" | tr ' ' '+')
  train "$name" $files
  echo "| $set | $n | $(f1 "$T/$name.json" eval/stance-dev-seeds.tsv) |"
done
echo
echo "| left out | tested on | macro-F1 without it | with it |"
echo "|---|---|---|---|"
train all $S/*.tsv $P/*.tsv
train no-it $S/en.tsv $S/de.tsv $S/fr.tsv $S/es.tsv $P/{en,de,fr,es}-pairs.tsv
echo "| it (it-ai, it-tech, it-pairs) | seeds (it) | $(f1 "$T/no-it.json" eval/stance-dev-seeds.tsv) | $(f1 "$T/all.json" eval/stance-dev-seeds.tsv) |"
for l in en de fr es; do
  train "no-$l" $(ls $S/*.tsv $P/*.tsv | grep -v "/$l.tsv\|/$l-pairs.tsv")
  echo "| $l | sentiment-news-test stance labels ($l) | $(f1 "$T/no-$l.json" eval/sentiment-news-test.tsv $l) | $(f1 "$T/all.json" eval/sentiment-news-test.tsv $l) |"
done
