"""docs/ and playbooks/README.md match the code: the inventories they show are the example
inventories, the variables they name exist, the HA-DR settings pass the keepalived pre-flight
checks, the migration example is what ipvs_table state=parsed returns."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.collection import ROOT, ensure_importable

ensure_importable()

from ansible_collections.lvs.ipvs.plugins.filter.keepalived import FilterModule  # noqa: E402
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save  # noqa: E402

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "playbooks" / "README.md"]
# Names in the pages that are not variables of this collection, with the reason.
NOT_OURS = {
    "lvs_ipvs_services",        # migration.md: the host variable the example playbook writes
    "lvs_sync_daemon",          # a keepalived.conf keyword
    "lvs_sched", "lvs_method",  # evrardjp.keepalived virtual-server keys
    "keepalived_instances", "keepalived_sync_groups", "keepalived_scripts",  # evrardjp.keepalived variables
}
NAME = re.compile(r"\b((?:lvs|nat_director|dr_director|tun_director|dr_real_server|tun_real_server|keepalived|rolling)"
                  r"_[a-z0-9_]*[a-z0-9])\b")


def _code_text() -> str:
    files = [p for d in ("roles", "playbooks", "plugins") for p in (ROOT / d).rglob("*")
             if p.is_file() and p.suffix in (".yml", ".py", ".j2")]
    return "\n".join(p.read_text() for p in files)


def _yaml_blocks(page: Path) -> dict[str, object]:
    """The page's YAML code blocks whose first line is a '# file name' comment, by that name."""
    blocks = {}
    for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S):
        first = block.splitlines()[0]
        if first.startswith("# ") and first.split()[1].endswith(".yml"):
            blocks[first.split()[1]] = yaml.safe_load(block)
    return blocks


def test_every_page_is_linked_from_the_index():
    index = (DOCS / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        if page.name != "README.md":
            assert "(%s)" % page.name in index, page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_variables_a_page_names_exist(page):
    code = _code_text()
    names = set(NAME.findall(page.read_text())) - NOT_OURS
    missing = sorted(n for n in names if not re.search(r"\b%s\b" % re.escape(n), code))
    assert not missing, "%s names %s, found nowhere in roles/, playbooks/ or plugins/" % (page.name, missing)


@pytest.mark.parametrize("mode", ["nat", "dr", "tun"])
def test_topology_pages_show_the_example_inventories(mode):
    blocks = _yaml_blocks(DOCS / ("%s.md" % mode))
    inventory = ROOT / "playbooks" / "inventories" / mode
    assert blocks["hosts.yml"] == yaml.safe_load((inventory / "hosts.yml").read_text())
    assert blocks["group_vars/all.yml"] == yaml.safe_load((inventory / "group_vars" / "all.yml").read_text())


def test_ha_dr_settings_pass_the_keepalived_preflight_checks():
    page = (DOCS / "ha-dr.md").read_text().replace('"{{ vault_vrrp_password }}"', "s3cret")
    blocks = {}
    for block in re.findall(r"```yaml\n(.*?)```", page, re.S):
        first = block.splitlines()[0]
        if first.startswith("# "):
            blocks[first.split()[1]] = yaml.safe_load(block)
    directors = blocks["hosts.yml"]["all"]["children"]["lvs_directors"]["hosts"]
    group_vars = blocks["group_vars/lvs_directors.yml"]
    hostvars = {name: dict(group_vars, **host, keepalived_group_hosts=list(directors)) for name, host in directors.items()}
    filters = FilterModule().filters()
    assert filters["keepalived_preflight"](hostvars, list(directors)) == []
    first, second = (filters["keepalived_config"](hostvars, list(directors), name) for name in directors)
    assert first["instances"][0]["state"] == "MASTER" and second["instances"][0]["state"] == "BACKUP"
    assert [vs["forwarding"] for vs in first["virtual_servers"]] == ["dr"]
    assert set(blocks["group_vars/lvs_real_servers.yml"]) == {"dr_real_server_vips", "dr_real_server_interface"}


def test_migration_example_is_what_parsed_returns():
    page = (DOCS / "migration.md").read_text()
    saved = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n"
    assert "`-A -t 10.0.0.1:80 -s rr` and `-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1`" in page
    (example,) = [yaml.safe_load(textwrap.dedent(b)) for b in re.findall(r"```yaml\n( *lvs_ipvs_services:.*?)```", page, re.S)]
    assert example["lvs_ipvs_services"] == parse_save(saved)
