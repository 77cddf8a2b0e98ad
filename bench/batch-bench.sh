#!/usr/bin/env bash
# Batch throughput on a corpus of 500+ articles assembled from the project's own texts:
# the five seeds, every written "mini-article" of eval/stance-train and
# eval/sentiment-news-test (one article per source group, and each group's first and
# second halves as two more articles). Runs `stance batch` without the vector cache,
# then twice with it (the first fills it, the second finds everything there).
#   bash bench/batch-bench.sh [STANCE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/stance}
CORPUS=$(mktemp -d); OUT=$(mktemp -d); SH=$(mktemp -d)
trap 'rm -rf "$CORPUS" "$OUT" "$SH"' EXIT
cp seeds/*.txt "$CORPUS/"
python3 - "$CORPUS" eval/stance-train/*.tsv eval/sentiment-news-test.tsv <<'PY'
import csv, sys, collections, pathlib
out = pathlib.Path(sys.argv[1])
groups = collections.OrderedDict()
for f in sys.argv[2:]:
    with open(f, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            groups.setdefault(row["source"], []).append(row["text"])
n = 0
for src, sents in groups.items():
    name = src.replace("written:", "").replace("/", "_")
    half = len(sents) // 2
    for suffix, part in (("all", sents), ("a", sents[:half]), ("b", sents[half:])):
        (out / f"{name}_{suffix}.txt").write_text(" ".join(part) + "\n", encoding="utf-8")
        n += 1
print(f"{n + 5} articles", file=sys.stderr)
PY
echo "without the cache:"
"$BIN" batch "$CORPUS" --out "$OUT/nocache.jsonl" --no-cache 2>&1 | tail -1
# A fresh vector cache for the cached runs, so the first one really embeds everything.
cp -r "${STANCE_HOME:-$HOME/.cache/stance}/e5-small-q4" "$SH/"
echo "with the cache, first run:"
STANCE_HOME=$SH "$BIN" batch "$CORPUS" --out "$OUT/c1.jsonl" 2>&1 | tail -1
echo "with the cache, second run:"
STANCE_HOME=$SH "$BIN" batch "$CORPUS" --out "$OUT/c2.jsonl" 2>&1 | tail -1
