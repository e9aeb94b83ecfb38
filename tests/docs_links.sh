#!/bin/sh
# tests/docs_links.sh — the project stands on its own.
#
#  1. No file of the project refers to notes kept outside the repository
#     (the developers' papers file, or anything under the shared directory
#     beside the checkout), except the optional test-data path in ALLOWED.
#  2. Every relative link in README.md and docs/**/*.md points to an
#     existing file, and a link to a heading (file.md#anchor) to a heading
#     that exists (GitHub's anchors: lower case, punctuation dropped, spaces
#     to hyphens; non-ASCII bytes are ignored on both sides).
#  3. Every docs/ markdown path named anywhere in the project exists, so that
#     `symlab describe` help strings and code comments point somewhere.
#
# The files checked are the tracked ones (`git ls-files`) in a git checkout,
# otherwise every text file under the source directory except what autogen.sh
# and the build generate (a release tarball, `make distcheck`): libtool's own
# files mention shared libraries, which is none of our business.
#
# The patterns are written as [P]APERS and [s]hared/ so that this file does
# not match itself.

LC_ALL=C
export LC_ALL

src=${SYMLAB_TEST_SRCDIR:-$(dirname "$0")/..}
src=$(cd "$src" && pwd -P) || exit 99

# The one reference to the shared directory that may stay: the optional
# Fashion-MNIST copy that tests and scripts use when it is present.
ALLOWED='../shared/data/fashion-mnist'

tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
status=0

fail() {
    echo "docs_links: $*"
    status=1
}

# ---------------------------------------------------------------- file list
top=$(git -C "$src" rev-parse --show-toplevel 2>/dev/null) && top=$(cd "$top" && pwd -P)
if [ -n "$top" ] && [ "$top" = "$src" ]; then
    git -C "$src" ls-files > "$tmp/files" || exit 99
    mode="tracked files"
else
    build=$(pwd -P)
    (cd "$src" && find . \
        \( -name .git -o -name autom4te.cache -o -name .libs -o -name .deps \
           -o -path ./build-aux -o -path ./m4 -o -name _build -o -name _inst \
           -o -path "./${build#"$src"/}" \) -prune \
        -o -type f ! -name '*.log' ! -name '*.trs' ! -name '*.o' ! -name '*.lo' \
           ! -name '*.la' ! -name '*.so' ! -name Makefile ! -name Makefile.in \
           ! -name configure ! -name aclocal.m4 ! -name 'config.*' ! -name libtool -print) |
        sed 's#^\./##' | sort > "$tmp/files"
    mode="files under $src"
fi
# Only files that exist (a tracked file may be deleted in the work tree).
while IFS= read -r f; do
    [ -f "$src/$f" ] && printf '%s\n' "$f"
done < "$tmp/files" > "$tmp/existing"
nfiles=$(wc -l < "$tmp/existing")

allowed_re=$(printf '%s' "$ALLOWED" | sed 's/[.]/[.]/g')

# ------------------------------------------- 1. references outside the tree
(cd "$src" && tr '\n' '\0' < "$tmp/existing" | xargs -0 grep -nHI -e '[P]APERS' -e '[s]hared/' \
    2>/dev/null) | sed "s#$allowed_re##g" | grep -e '[P]APERS' -e '[s]hared/' > "$tmp/refs"

while IFS= read -r line; do
    fail "outside reference: $line"
done < "$tmp/refs"

# ----------------------------------------------------- 2. markdown links
# Headings and links of a markdown file, outside fenced code blocks and
# inline code spans: "H slug" and "L target" lines.
md_scan() {
    awk '
    /^[ \t]*```/ { fence = !fence; next }
    fence { next }
    /^#+[ \t]/ {
        h = $0
        sub(/^#+[ \t]+/, "", h)
        sub(/[ \t]+#*[ \t]*$/, "", h)
        h = tolower(h)
        gsub(/[^a-z0-9 _-]/, "", h)
        gsub(/ /, "-", h)
        print "H " h
    }
    {
        line = $0
        gsub(/`[^`]*`/, "", line)
        while (match(line, /\]\([^)]*\)/)) {
            t = substr(line, RSTART + 2, RLENGTH - 3)
            sub(/[ \t].*$/, "", t)
            print "L " t
            line = substr(line, RSTART + RLENGTH)
        }
    }' "$1"
}

nlinks=0
grep -e '^README\.md$' -e '^docs/.*\.md$' "$tmp/existing" > "$tmp/md"
while IFS= read -r md; do
    md_scan "$src/$md" > "$tmp/scan"
    dir=$(dirname "$md")
    sed -n 's/^L //p' "$tmp/scan" > "$tmp/links"
    while IFS= read -r target; do
        case $target in
        http:* | https:* | mailto:* | '') continue ;;
        esac
        nlinks=$((nlinks + 1))
        path=${target%%#*}
        anchor=
        case $target in *'#'*) anchor=${target#*#} ;; esac
        if [ -z "$path" ]; then
            file=$src/$md
        else
            file=$src/$dir/$path
        fi
        if [ ! -e "$file" ]; then
            fail "$md: broken link '$target' ($dir/$path does not exist)"
            continue
        fi
        if [ -n "$anchor" ]; then
            case $file in *.md) ;; *) continue ;; esac
            want=$(printf '%s' "$anchor" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9_-')
            if ! md_scan "$file" | grep -x "H $want" >/dev/null; then  # not -q: no SIGPIPE under pipefail
                fail "$md: link '$target' names no heading of ${file#"$src"/}"
            fi
        fi
    done < "$tmp/links"
done < "$tmp/md"

# --------------------------------------------- 3. docs paths named anywhere
(cd "$src" && tr '\n' '\0' < "$tmp/existing" | xargs -0 grep -oHI 'docs/[A-Za-z0-9_./-]*\.md' \
    2>/dev/null) | sort -u > "$tmp/paths"
npaths=0
while IFS= read -r hit; do
    npaths=$((npaths + 1))
    path=${hit#*:}
    [ -f "$src/$path" ] || fail "${hit%%:*} names $path, which does not exist"
done < "$tmp/paths"

echo "docs_links: $nfiles $mode, $nlinks markdown links, $npaths docs paths checked"
exit $status
