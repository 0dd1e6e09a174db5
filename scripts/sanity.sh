#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection placed at ansible_collections/lvs/ipvs.
# Usage: [SANITY_FROM_INDEX=1] scripts/sanity.sh [ansible-test sanity args...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/lvs/ipvs"
mkdir -p "$dest"
if [ -n "${SANITY_FROM_INDEX:-}" ]; then
    # Exactly what is staged (what the next commit will hold), nothing else of the work tree.
    git checkout-index -a --prefix="$dest/"
else
    git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$dest"/
fi
cd "$dest"
# ansible-test lists the collection's files through git when it is a repository.
git init -q && git add -A && git -c user.email=ci@invalid -c user.name=ci commit -qm sanity
py=$("$root/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# ansible-test fetches a pip bootstrap script from a host outside the package registries;
# give it ours (ensurepip, then pip install) under the name it looks for.
pip_version=$("$root/.venv/bin/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(type("P", (), {"version": "'"$py"'"})())["pip"])')
mkdir -p "$HOME/.ansible/test/cache"
cp "$root/scripts/pip_bootstrap.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
"$root/.venv/bin/ansible-test" sanity --requirements --python "$py" --color no "$@"
