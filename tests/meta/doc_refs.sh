#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Usage: doc_refs.sh SRC
#
# Every document a source file names - a comment citing "docs/DESIGN.md",
# a script pointing at "README.md" - must be in the repository, so that
# whoever reads the code can read what it points to. A name counts when it
# is a path from the top of the repository or from the citing file's own
# folder. Source files are the code, build and test files that git tracks
# (or would), not the documents themselves. Fails naming each citation of
# a document that is not there.
set -eu
SRC=$1
cd "$SRC"

if git rev-parse --git-dir >/dev/null 2>&1; then
    files=$(git ls-files -co --exclude-standard)
else
    files=$(find . -path ./build -prune -o -type f -print | sed 's|^\./||')
fi
files=$(echo "$files" | grep -E '(\.(c|h|sh|cmake|pm|t|pl|py|php|proto)|CMakeLists\.txt)$' || true)
if [ -z "$files" ]; then
    echo "no source files found under $SRC"
    exit 1
fi


# One grep over every file gives FILE:REF pairs (a fork per file was slow
# on a busy machine); each distinct pair is checked once.
pairs=$(grep -aoHE '[A-Za-z0-9_./-]*[A-Za-z0-9_]\.md\b' $files | sort -u || true)
bad=""
n=0
for pair in $pairs; do
    f=${pair%%:*}
    ref=${pair#*:}
    n=$((n + 1))
    if [ -f "$ref" ] || [ -f "${f%/*}/$ref" ]; then
        continue
    fi
    lines=$(grep -anF "$ref" "$f" | cut -d: -f1 | tr '\n' ',' | sed 's/,$//')
    bad="$bad
$f:$lines: cites $ref, which is not in the repository"
done
if [ -n "$bad" ]; then
    echo "citations of documents that are not in the repository:$bad"
    exit 1
fi
echo "ok: $n citations of documents, all in the repository"
