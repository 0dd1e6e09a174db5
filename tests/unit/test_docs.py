"""The documentation matches the code: the inventories the pages show are the example inventories,
the variables they name exist, the removed topology roles are named only where the porting is
explained, the HA-DR inventory passes the keepalived pre-flight checks the way site.yml feeds them,
the ownership table is the same in both role READMEs, the migration example is what ipvs_table
state=parsed returns."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.collection import ROOT, ensure_importable

ensure_importable()

from ansible_collections.lvs.ipvs.plugins.filter.keepalived import FilterModule as KeepalivedFilters  # noqa: E402
from ansible_collections.lvs.ipvs.plugins.filter.lvs_topology import FilterModule as TopologyFilters  # noqa: E402
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save  # noqa: E402

DOCS = ROOT / "docs"
ROLE_READMES = [ROOT / "roles" / "director" / "README.md", ROOT / "roles" / "real_server" / "README.md"]
PAGES = (sorted(DOCS.glob("*.md")) + [ROOT / "playbooks" / "README.md", ROOT / "README.md",
                                      ROOT / "roles" / "keepalived" / "README.md"] + ROLE_READMES)
# Names in the pages that are not variables of this collection, with the reason.
NOT_OURS = {
    "lvs_ipvs_services",        # migration.md: the host variable the example playbook writes
    "lvs_sync_daemon",          # a keepalived.conf keyword
    "lvs_sched", "lvs_method",  # evrardjp.keepalived virtual-server keys
    "keepalived_instances", "keepalived_sync_groups", "keepalived_scripts",  # evrardjp.keepalived variables
}
NAME = re.compile(r"\b((?:lvs|director|real_server|keepalived|rolling)_[a-z0-9_]*[a-z0-9])\b")
# The roles lvs.ipvs.director and lvs.ipvs.real_server replaced (and their variable prefixes).
REMOVED = re.compile(r"\b(nat_director|dr_director|tun_director|dr_real_server|tun_real_server)")
# Where the removed roles may be named: the porting guide and the "replaces" line of the new roles.
PORTING = {"docs/migration.md", "roles/director/README.md", "roles/real_server/README.md"}


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


def _inventory(name: str) -> dict[str, object]:
    inventory = ROOT / "playbooks" / "inventories" / name
    return {"hosts.yml": yaml.safe_load((inventory / "hosts.yml").read_text()),
            "group_vars/all.yml": yaml.safe_load((inventory / "group_vars" / "all.yml").read_text())}


def test_every_page_is_linked_from_the_index():
    index = (DOCS / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        if page.name != "README.md":
            assert "(%s)" % page.name in index, page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_variables_a_page_names_exist(page):
    code = _code_text()
    names = set(NAME.findall(page.read_text())) - NOT_OURS
    missing = sorted(n for n in names if not re.search(r"\b%s\b" % re.escape(n), code))
    assert not missing, "%s names %s, found nowhere in roles/, playbooks/ or plugins/" % (page.name, missing)


@pytest.mark.parametrize("page", PAGES + [ROOT / "molecule" / "README.md"], ids=lambda p: str(p.relative_to(ROOT)))
def test_the_removed_roles_are_named_only_in_the_porting_guide(page):
    if str(page.relative_to(ROOT)) in PORTING:
        return
    found = sorted(set(REMOVED.findall(page.read_text())))
    assert not found, "%s still names %s (replaced by lvs.ipvs.director and lvs.ipvs.real_server)" % (page.name, found)


@pytest.mark.parametrize("mode", ["nat", "dr", "tun", "fullnat"])
def test_topology_pages_show_the_example_inventories(mode):
    blocks = _yaml_blocks(DOCS / ("%s.md" % mode))
    inventory = _inventory(mode)
    assert blocks["hosts.yml"] == inventory["hosts.yml"]
    assert blocks["group_vars/all.yml"] == inventory["group_vars/all.yml"]


@pytest.mark.parametrize("page", [DOCS / "ha-dr.md"] + ROLE_READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_ha_dr_pages_show_the_ha_dr_inventory(page):
    blocks = _yaml_blocks(page)
    inventory = _inventory("ha_dr")
    assert blocks["hosts.yml"] == inventory["hosts.yml"]
    assert blocks["group_vars/all.yml"] == inventory["group_vars/all.yml"]


def test_ha_dr_inventory_passes_the_keepalived_preflight_checks():
    """The keepalived settings site.yml derives from playbooks/inventories/ha_dr (lvs_ha: true)."""
    inventory = _inventory("ha_dr")
    group_vars = dict(inventory["group_vars/all.yml"], lvs_ha_vrrp={**inventory["group_vars/all.yml"]["lvs_ha_vrrp"]})
    groups = inventory["hosts.yml"]["all"]["children"]
    directors, real_servers = groups["lvs_directors"]["hosts"], groups["lvs_real_servers"]["hosts"]
    topo = TopologyFilters().filters()
    rs_facts = {name: {"lvs_site_real_server": {"address": host["ansible_host"], "port": None,
                                                "weight": host.get("lvs_real_server_weight", 1), "gateway": ""}}
                for name, host in real_servers.items()}
    site = topo["lvs_site"](rs_facts, list(real_servers), group_vars["lvs_virtual_services"])
    director = topo["lvs_director"](site["services"], group_vars["lvs_mode"], "director_services")
    vrrp = group_vars["lvs_ha_vrrp"]
    instance = {"name": "VI_LVS", "interface": vrrp.get("interface", group_vars["lvs_director_interface"]),
                "virtual_router_id": vrrp["virtual_router_id"], "auth_pass": vrrp["auth_pass"],
                "nopreempt": vrrp.get("nopreempt", True), "virtual_ipaddresses": director["vips"]}
    servers = topo["lvs_keepalived_services"](director["table"], group_vars["lvs_health_check"],
                                              group_vars["lvs_health_check_delay_loop"])
    hostvars = {name: dict(host, keepalived_group="lvs_directors", keepalived_group_hosts=list(directors),
                           keepalived_vrrp_instances=[instance], keepalived_virtual_servers=servers,
                           keepalived_static_addresses=[], keepalived_ipvs_table_services=[])
                for name, host in directors.items()}
    filters = KeepalivedFilters().filters()
    assert filters["keepalived_preflight"](hostvars, list(directors)) == []
    first, second = (filters["keepalived_config"](hostvars, list(directors), name) for name in directors)
    assert [i["name"] for i in first["instances"]] == ["VI_LVS"]
    # keepalived's lvs_method per real server (the virtual server's own default stays keepalived's NAT).
    assert {rs["lvs_method"] for vs in first["virtual_servers"] for rs in vs["real_servers"]} == {"DR"}
    assert first["instances"][0]["priority"] > second["instances"][0]["priority"]
    assert director["vips"] == ["192.0.2.10/32", "192.0.2.20/32"]


def _ownership_table(page: Path) -> str:
    text = page.read_text()
    match = re.search(r"<!-- ownership table -->\n(.*?)<!-- /ownership table -->", text, re.S)
    assert match, "%s has no ownership table" % page.name
    return match.group(1)


def test_the_ownership_table_is_the_same_in_both_role_readmes():
    director, real_server = (_ownership_table(p) for p in ROLE_READMES)
    assert director == real_server
    for path in ("/var/lib/lvs.ipvs/lvs-director.json", "/etc/lvs.ipvs/lvs-director.ipvs.rules",
                 "/etc/lvs.ipvs/lvs-director.nat4.rules", "LVS-DIRECTOR", "lvs-director.service",
                 "lvs-real-server.service", "/etc/sysctl.d/90-lvs-director.conf",
                 "/etc/modules-load.d/lvs-director.conf", "/etc/sysctl.d/90-lvs-real-server.conf"):
        assert path in director, path


def test_the_ownership_table_names_the_roles_defaults():
    """The paths and names in the table are the roles' defaults."""
    director = yaml.safe_load((ROOT / "roles" / "director" / "defaults" / "main.yml").read_text())
    real_server = yaml.safe_load((ROOT / "roles" / "real_server" / "defaults" / "main.yml").read_text())
    assert director["director_sysctl_file"] == "/etc/sysctl.d/90-lvs-director.conf"
    assert director["director_modules_file"] == "/etc/modules-load.d/lvs-director.conf"
    assert director["director_unit_name"] == "lvs-director"
    assert director["director_state_dir"] == "/var/lib/lvs.ipvs"
    assert director["director_nat_chain"] == "LVS-DIRECTOR"
    assert director["director_drain_timeout"] == 30
    assert real_server["real_server_sysctl_file"] == "/etc/sysctl.d/90-lvs-real-server.conf"
    assert real_server["real_server_unit_name"] == "lvs-real-server"


def test_migration_example_is_what_parsed_returns():
    page = (DOCS / "migration.md").read_text()
    saved = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n"
    assert "`-A -t 10.0.0.1:80 -s rr` and `-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1`" in page
    (example,) = [yaml.safe_load(textwrap.dedent(b)) for b in re.findall(r"```yaml\n( *lvs_ipvs_services:.*?)```", page, re.S)]
    assert example["lvs_ipvs_services"] == parse_save(saved)
