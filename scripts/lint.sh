#!/usr/bin/env bash
# Release linters, run by `make test` after sanity:
#   ansible-lint at the production profile (.ansible-lint), the collection's plugin and role docs
#   (antsibull-docs), the changelog fragments (antsibull-changelog).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$root/.venv/bin:$PATH"
# The collection resolves as lvs.ipvs through the same symlink the tests use (tests/support/collection.py).
link="$root/.collections/ansible_collections/lvs/ipvs"
if [ ! -e "$link" ]; then
    mkdir -p "$(dirname "$link")"
    ln -s "$root" "$link"
fi
export ANSIBLE_COLLECTIONS_PATH="$root/.collections"
start=$SECONDS

echo "lint: ansible-lint --profile production"
ansible-lint --profile production --nocolor

echo "lint: antsibull-docs lint-collection-docs --plugin-docs"
antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs all --disallow-unknown-collection-refs .
echo "antsibull-docs: collection docs and plugin docs OK"

echo "lint: antsibull-changelog lint"
antsibull-changelog lint
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
echo "antsibull-changelog: fragments and changelogs/changelog.yaml OK"

echo "lint: ok in $((SECONDS - start)) s"
